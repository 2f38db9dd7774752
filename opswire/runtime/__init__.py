"""Runtime glue every process shares: settings, NATS and JetStream, the reliable
publisher, RPC client and server, the database, logging, tokens."""
