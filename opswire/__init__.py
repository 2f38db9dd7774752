"""opswire's shared package: the contract (frames, payloads, subjects, RPC catalogue)
and the runtime glue every service uses (settings, NATS and database helpers, CLI)."""

__version__ = "0.1.0"
