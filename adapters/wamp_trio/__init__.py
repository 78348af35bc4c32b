"""wamp_trio: trio adapters binding wamp_core to WebSocket, RawSocket and HTTP long-poll."""
