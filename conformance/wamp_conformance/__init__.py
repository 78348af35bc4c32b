"""wamp_conformance: checks any WAMP router over the wire against the spec."""
