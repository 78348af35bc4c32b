"""Fuzz target: the router's configuration loader (``wamp_trio.parse_config``).

The input is the TOML text. The answer is a ``RouterConfig`` or a
``ConfigError``, never another exception.
"""

from __future__ import annotations

from _common import instrumented, main

with instrumented():
    from wamp_trio import ConfigError, RouterConfig, parse_config


def test_one_input(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    try:
        config = parse_config(text, base="/nonexistent")
    except ConfigError as exc:
        error: ConfigError | None = exc
    else:
        assert isinstance(config, RouterConfig)
        return
    assert error is not None
    assert error.key
    assert error.problem


SEEDS = [
    b"[router]\nauto_create_realms = false\nshutdown_timeout = 5.0\n",
    b'[[realms]]\nname = "realm1"\n\n[[realms]]\nname = "com.example"\nanonymous = "guest"\n'
    b'[[realms.roles]]\nname = "guest"\n[[realms.roles.permissions]]\nuri = "com.example."\n'
    b'match = "prefix"\ncall = true\n[[realms.principals]]\nauthid = "alice"\nrole = "guest"\n'
    b'ticket = "t"\n',
    b'[[listeners]]\ntype = "tcp"\nhost = "0.0.0.0"\nport = 8443\nwebsocket = "/ws"\n'
    b'longpoll = false\n[[listeners]]\ntype = "unix"\npath = "r.sock"\n',
    b'[limits]\nqueue_size = 1024\nslow_consumer = "drop"\nmax_message_size = 16777216\n'
    b'[logging]\nlevel = "info"\n',
    b'[router]\nevent_history = [{uri = "com.a", match = "prefix", limit = 5}]\n',
    b'[[realms]]\nname = "r"\n[realms.authenticator]\nprocedure = "com.auth"\nticket = true\n',
]

if __name__ == "__main__":
    main(test_one_input, SEEDS)
