"""The one-machine launcher: `opswire up`, its supervisor, embedded NATS and
PostgreSQL, and the demo agent."""
