"""The contract: every WebSocket frame, NATS payload and RPC message as one pydantic model."""
