"""No credential ever reaches a log.

A router configured with every authentication method (ticket, WAMP-CRA plain
and salted, cryptosign, WAMP-SCRAM from a password and from a derived
credential, a dynamic authenticator in ticket mode) and a TLS listener runs with
every logger at DEBUG. Clients log in rightly and wrongly, break the protocol
in the middle of authentication, and the authenticator procedure raises. No log
record (its message, its arguments, its formatted exception) may then contain
a ticket, a password, a derived key, a private key, an AUTHENTICATE signature
or the TLS key file's contents. The configuration loader's error messages must
not echo secrets either.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import trio

import wamp_core
from tests.trio.test_rawsocket import make_tls_contexts
from tests.trio.test_router_auth import Client
from wamp_trio._auth import ticket_auth
from wamp_trio._cli import main
from wamp_trio._client import connect
from wamp_trio._config import ConfigError, build_router, parse_config
from wamp_trio._connect import open_transport
from wamp_trio._host import RouterHost, serve_router
from wamp_trio._transport import TransportClosed

ALICE_TICKET = "tkt-alice-7f3a9c51"
BOB_SECRET = "cra-bob-51d0e2aa"
CAROL_PASSWORD = "cra-carol-88b1f0c3"
ERIN_PASSWORD = "scram-erin-2c7d9e11"
FRANK_PASSWORD = "scram-frank-4b8e2f70"
BACKEND_TICKET = "tkt-backend-6a1b3d55"
GINA_TICKET = "tkt-gina-0e9f7c22"
DAVE_SEED = bytes(range(32, 64))
DAVE = wamp_core.CryptosignKey(DAVE_SEED)
FRANK = wamp_core.derive_scram_credential(FRANK_PASSWORD, kdf="pbkdf2", iterations=4096)
CAROL_KEY = wamp_core.CraCredential.salted(CAROL_PASSWORD, "carol-salt", 100, 32).secret


def forms(value: str | bytes) -> list[str]:
    """``value`` as a log could spell it: itself, hex, base64."""
    raw = value.encode() if isinstance(value, str) else value
    spelled = [raw.hex(), base64.b64encode(raw).decode().rstrip("=")]
    if isinstance(value, str):
        spelled.append(value)
    return spelled


def static_secrets() -> list[str]:
    derived = wamp_core.ScramCredential.from_dict(FRANK.to_dict())
    return [
        *forms(ALICE_TICKET),
        *forms(BOB_SECRET),
        *forms(CAROL_PASSWORD),
        CAROL_KEY,
        *forms(ERIN_PASSWORD),
        *forms(FRANK_PASSWORD),
        *forms(derived.stored_key),
        *forms(derived.server_key),
        *forms(BACKEND_TICKET),
        *forms(GINA_TICKET),
        *forms(DAVE_SEED),
    ]


def config_text() -> str:
    frank = FRANK.to_dict()
    return f"""
[[realms]]
name = "realm1"

[[realms.roles]]
name = "user"

[[realms.roles.permissions]]
uri = "com.example."
match = "prefix"
call = true

[[realms.principals]]
authid = "alice"
role = "user"
ticket = "{ALICE_TICKET}"

[[realms.principals]]
authid = "bob"
role = "user"
wampcra = {{ secret = "{BOB_SECRET}" }}

[[realms.principals]]
authid = "carol"
role = "user"
wampcra = {{ secret = "{CAROL_PASSWORD}", salt = "carol-salt", iterations = 100 }}

[[realms.principals]]
authid = "dave"
role = "user"
cryptosign = ["{DAVE.public_key_hex}"]

[[realms.principals]]
authid = "erin"
role = "user"
scram = {{ password = "{ERIN_PASSWORD}", kdf = "pbkdf2", iterations = 4096 }}

[[realms.principals]]
authid = "frank"
role = "user"
scram = {{ kdf = "pbkdf2", iterations = 4096, salt = "{frank["salt"]}", stored-key = "{frank["stored-key"]}", server-key = "{frank["server-key"]}" }}

[[realms]]
name = "realm2"

[realms.authenticator]
procedure = "com.example.authenticate"
ticket = true
timeout = 5

[[realms.principals]]
authid = "backend"
role = "backend"
ticket = "{BACKEND_TICKET}"

[[realms.roles]]
name = "backend"

[[realms.roles.permissions]]
uri = "com.example."
match = "prefix"
register = true

[[realms.roles]]
name = "frontend"

[[listeners]]
type = "tcp"
port = 0
websocket = false
longpoll = false

[[listeners]]
type = "tcp"
port = 0
websocket = false
longpoll = false
tls = {{ cert = "cert.pem", key = "key.pem" }}

[[listeners]]
type = "tcp"
port = 0
rawsocket = false
"""  # noqa: E501


Answer = Callable[[wamp_core.ChallengeReceived], tuple[str, dict[str, Any]]]


class Recorder:
    """Answers challenges and keeps every signature it sent."""

    def __init__(self) -> None:
        self.signatures: list[str] = []

    def wrap(self, answer: Answer) -> Answer:
        def recorded(challenge: wamp_core.ChallengeReceived) -> tuple[str, dict[str, Any]]:
            signature, extra = answer(challenge)
            self.signatures.append(signature)
            return signature, extra

        return recorded


@contextlib.asynccontextmanager
async def router(tmp_path: Path) -> AsyncIterator[tuple[str, str, str, Any]]:
    """The configuration served; (rs:// URL, rss:// URL, ws:// URL, client SSL context)."""
    _, client_context = make_tls_contexts(tmp_path)
    config = parse_config(config_text(), base=tmp_path, name="secrets.toml")
    host = RouterHost(build_router(config))
    listeners = list(config.listeners)
    async with trio.open_nursery() as nursery:
        endpoints = await nursery.start(serve_router, host, listeners)
        plain, tls = (e.url for e in endpoints if e.kind == "rawsocket")
        (websocket,) = (e.url for e in endpoints if e.kind == "websocket")
        assert plain.startswith("rs://")
        assert tls.startswith("rss://")
        with trio.fail_after(60):
            yield plain, tls, websocket, client_context
        nursery.cancel_scope.cancel()


async def login(
    url: str,
    realm: str,
    hello: dict[str, Any],
    answer: Answer | None,
    ssl_context: Any = None,
) -> wamp_core.SessionEvent:
    """Join ``realm``; the SessionJoined or SessionAborted event."""
    async with open_transport(url, ssl_context=ssl_context) as transport:
        client = Client(transport)
        client.session.join(realm, **hello)
        event = await client.next_event()
        if isinstance(event, wamp_core.ChallengeReceived):
            assert answer is not None, event
            client.session.authenticate(*answer(event))
            event = await client.next_event()
        if isinstance(event, wamp_core.SessionJoined):
            client.session.leave()
            await client.flush()
        return event


async def raw_exchange(url: str, *frames: bytes, violation: bool = True) -> None:
    """Send JSON ``frames``, each after the router's answer to the last (a
    CHALLENGE); the router must end with ABORT, and, after a ``violation``,
    close the connection."""
    async with open_transport(url) as transport:
        answers = []
        for frame in frames:
            await transport.send(frame)
            answers.append(json.loads(await transport.receive()))
        assert answers[-1][0] == wamp_core.MessageType.ABORT, answers
        if violation:
            with pytest.raises(TransportClosed):
                await transport.receive()


async def http_exchange(ws_url: str, head: bytes) -> bytes:
    """Send ``head`` to the WebSocket listener; the response, until the close."""
    port = int(urlsplit(ws_url).port or 0)
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(head)
        response = b""
        for _ in range(1000):
            data = await stream.receive_some(65536)
            if not data:
                break
            response += data
    return response


def hello_frame(realm: str, **details: Any) -> bytes:
    roles = '{"caller": {}, "callee": {}}'
    extra = "".join(f', "{k}": {v}' for k, v in details.items())
    return f'[1, "{realm}", {{"roles": {roles}{extra}}}]'.encode()


def leaks(records: list[logging.LogRecord], secrets: list[str]) -> list[tuple[str, str]]:
    """(secret, where and what was logged) for every record that contains a secret."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    found: list[tuple[str, str]] = []
    for record in records:
        text = formatter.format(record) + repr(record.args) + repr(vars(record))
        where = f"{record.name} {record.levelname} {record.pathname}:{record.lineno}"
        found.extend(
            (secret, f"{where}: {record.getMessage()}")
            for secret in secrets
            if secret and secret in text
        )
    return found


async def test_no_secret_reaches_a_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Every method, right and wrong, broken AUTHENTICATEs, a failing dynamic
    authenticator: the DEBUG log holds no secret."""
    caplog.set_level(logging.DEBUG)
    for name in ("wamp_trio", "wamp_core"):
        caplog.set_level(logging.DEBUG, logger=name)
    recorder = Recorder()
    wrap = recorder.wrap
    async with router(tmp_path) as (url, tls_url, _, tls_context):
        key_lines = [
            line
            for line in (tmp_path / "key.pem").read_text().splitlines()
            if line and not line.startswith("-----")
        ]

        def ticket(value: str) -> Answer:
            return wrap(lambda _: (value, {}))

        def cra(secret: str) -> Answer:
            return wrap(lambda c: (wamp_core.wampcra_signature(secret, c.extra), {}))

        def scram(client: wamp_core.ScramClient) -> Answer:
            return wrap(lambda c: client.challenge(c.authmethod, c.extra))

        other = wamp_core.CryptosignKey(bytes(32))
        attempts: list[tuple[str, dict[str, Any], Answer | None, bool]] = [
            ("realm1", {"authmethods": ["ticket"], "authid": "alice"}, ticket(ALICE_TICKET), True),
            ("realm1", {"authmethods": ["ticket"], "authid": "alice"}, ticket(BOB_SECRET), False),
            (
                "realm1",
                {"authmethods": ["ticket"], "authid": "nobody"},
                ticket(ALICE_TICKET),
                False,
            ),
            ("realm1", {"authmethods": ["wampcra"], "authid": "bob"}, cra(BOB_SECRET), True),
            ("realm1", {"authmethods": ["wampcra"], "authid": "bob"}, cra(CAROL_PASSWORD), False),
            ("realm1", {"authmethods": ["wampcra"], "authid": "carol"}, cra(CAROL_PASSWORD), True),
            ("realm1", {"authmethods": ["wampcra"], "authid": "carol"}, cra(BOB_SECRET), False),
            ("realm1", {"authmethods": ["wampcra"], "authid": "zed"}, cra(BOB_SECRET), False),
            (
                "realm1",
                {
                    "authmethods": ["cryptosign"],
                    "authid": "dave",
                    "authextra": DAVE.hello_authextra(),
                },
                wrap(lambda c: (DAVE.respond(c.extra), {})),
                True,
            ),
            (
                "realm1",
                {
                    "authmethods": ["cryptosign"],
                    "authid": "dave",
                    "authextra": other.hello_authextra(),
                },
                wrap(lambda c: (other.respond(c.extra), {})),
                False,
            ),
        ]
        for authid, password, ok in [
            ("erin", ERIN_PASSWORD, True),
            ("erin", FRANK_PASSWORD, False),
            ("frank", FRANK_PASSWORD, True),
            ("frank", ERIN_PASSWORD, False),
            ("yves", ERIN_PASSWORD, False),
        ]:
            for method in ("wamp-scram", "scram"):
                client = wamp_core.ScramClient(authid, password, authmethods=[method])
                attempts.append(("realm1", client.hello(), scram(client), ok))
        for realm, hello, answer, ok in attempts:
            event = await login(url, realm, hello, answer)
            kind = wamp_core.SessionJoined if ok else wamp_core.SessionAborted
            assert isinstance(event, kind), (hello, event)
        # Over TLS as well.
        event = await login(
            tls_url, "realm1", {"authmethods": ["ticket"], "authid": "alice"},
            ticket(ALICE_TICKET), tls_context,
        )  # fmt: skip
        assert isinstance(event, wamp_core.SessionJoined), event

        # Protocol errors in the middle of authentication, carrying secrets.
        ticket_hello = hello_frame("realm1", authmethods='["ticket"]', authid='"alice"')
        for bad in (
            f'[5, "{ALICE_TICKET}", "not a dict"]',
            f'[5, ["{ALICE_TICKET}"], {{}}]',
            f'[5, "{ALICE_TICKET}", {{}}, "one too many"]',
            f'[5, "{ALICE_TICKET}", {{}}',  # not even JSON
            f'[1, "realm1", {{"roles": {{}}, "ticket": "{ALICE_TICKET}"}}]',  # HELLO again
            f'[6, {{"message": "{ALICE_TICKET}"}}, "wamp.close.normal"]',  # GOODBYE now
        ):
            await raw_exchange(url, ticket_hello, bad.encode())
        # AUTHENTICATE with no HELLO at all.
        await raw_exchange(url, f'[5, "{ALICE_TICKET}", {{}}]'.encode())
        # A HELLO whose authextra carries a secret, for a method that fails.
        await raw_exchange(
            url,
            hello_frame(
                "realm1", authmethods='["wampcra"]', authid='"bob"',
                authextra=f'{{"password": "{BOB_SECRET}"}}',
            ),
            f'[5, "{BOB_SECRET}", {{}}]'.encode(),
            violation=False,
        )  # fmt: skip

        # Dynamic authentication whose procedure raises, then a malformed answer,
        # then no procedure at all.
        async with connect(url, "realm2", **ticket_auth(BACKEND_TICKET, authid="backend")) as s:

            def authenticate(realm: str, authid: str, details: dict[str, Any]) -> Any:
                raise RuntimeError("the user database is down")

            await s.register("com.example.authenticate", authenticate)
            event = await login(
                url, "realm2", {"authmethods": ["ticket"], "authid": "gina"},
                ticket(GINA_TICKET),
            )  # fmt: skip
            assert isinstance(event, wamp_core.SessionAborted), event
            assert event.reason == wamp_core.ErrorURI.AUTHENTICATION_FAILED
        # One that answers with what it was given (the ticket too): not a valid answer.
        async with connect(url, "realm2", **ticket_auth(BACKEND_TICKET, authid="backend")) as s:

            def echo(realm: str, authid: str, details: dict[str, Any]) -> Any:
                assert details["ticket"] == GINA_TICKET
                return {"role": details, "authid": details["ticket"]}

            await s.register("com.example.authenticate", echo)
            event = await login(
                url, "realm2", {"authmethods": ["ticket"], "authid": "gina"},
                ticket(GINA_TICKET),
            )  # fmt: skip
            assert isinstance(event, wamp_core.SessionAborted), event
        event = await login(
            url, "realm2", {"authmethods": ["ticket"], "authid": "gina"}, ticket(GINA_TICKET)
        )
        assert isinstance(event, wamp_core.SessionAborted), event

    records = list(caplog.records)
    messages = "\n".join(r.getMessage() for r in records)
    assert "protocol violation" in messages  # the test saw the router's logs ...
    assert "procedure 'com.example.authenticate' raised" in messages  # ... and the client's
    secrets = [*static_secrets(), *recorder.signatures, *key_lines]
    assert len(recorder.signatures) >= len(attempts)
    assert leaks(records, secrets) == []


async def test_a_bad_http_request_head_is_logged_without_its_credentials(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A request head that does not parse is refused (400) and logged at info;
    the log names the problem, not the header or request line that carries a
    credential. Today the log quotes the offending line (h11's message)."""
    caplog.set_level(logging.DEBUG)
    async with router(tmp_path) as (_, _, ws_url, _):
        for head in (
            f"GET /ws HTTP/1.1\r\nHost: x\r\nAuthorization Bearer {GINA_TICKET}\r\n\r\n",
            f"GET /ws HTTP/1.1\r\nHost: x\r\nCookie: t={GINA_TICKET}\x00\r\n\r\n",
            f"GET /ws?ticket={GINA_TICKET} HTTP/1.1 extra\r\nHost: x\r\n\r\n",
            f"GET /nowhere?ticket={GINA_TICKET} HTTP/1.1\r\nHost: x\r\n\r\n",
        ):
            response = await http_exchange(ws_url, head.encode())
            assert response.startswith((b"HTTP/1.1 400", b"HTTP/1.1 404")), response
    records = list(caplog.records)
    assert sum("refused (400)" in r.getMessage() for r in records) == 3
    assert leaks(records, forms(GINA_TICKET)) == []


# -- the configuration loader ------------------------------------------------------------

PRIVATE_KEY_128 = (DAVE_SEED + DAVE.public_key).hex()
"""A libsodium-style secret key (seed and public key), put where a public key belongs."""


@pytest.mark.parametrize(
    ("principal", "secret"),
    [
        (f'ticket = ["{ALICE_TICKET}"]', ALICE_TICKET),
        (f'tikcet = "{ALICE_TICKET}"', ALICE_TICKET),  # a misspelt key
        (f'ticket = "{ALICE_TICKET}', ALICE_TICKET),  # a TOML syntax error on its line
        (f'wampcra = {{ secret = "{BOB_SECRET}", salt = "s", iterations = 0 }}', BOB_SECRET),
        (f'wampcra = {{ secret = "{BOB_SECRET}", iterations = 10 }}', BOB_SECRET),
        (f'wampcra = {{ secret = "{BOB_SECRET}", extra = "{BOB_SECRET}" }}', BOB_SECRET),
        (f'scram = {{ password = "{ERIN_PASSWORD}", kdf = "pbkdf2", memory = 64 }}', ERIN_PASSWORD),
        (f'scram = {{ password = "{ERIN_PASSWORD}", kdf = "md5" }}', ERIN_PASSWORD),
        (f'scram = {{ password = "{ERIN_PASSWORD}", salt = "00" }}', ERIN_PASSWORD),
        (
            f'scram = {{ kdf = "pbkdf2", iterations = 1, salt = "00", stored-key = "{FRANK_PASSWORD}", server-key = "00" }}',  # noqa: E501
            FRANK_PASSWORD,
        ),
        (f'cryptosign = ["{PRIVATE_KEY_128}"]', PRIVATE_KEY_128),
    ],
    ids=[
        "ticket-type", "misspelt-key", "toml-syntax", "cra-iterations", "cra-unsalted",
        "cra-unknown-key", "scram-memory", "scram-kdf", "scram-both-forms", "scram-hex",
        "private-key-as-public-key",
    ],
)  # fmt: skip
def test_config_errors_do_not_echo_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], principal: str, secret: str
) -> None:
    text = f"""
[[realms]]
name = "realm1"

[[realms.roles]]
name = "user"

[[realms.principals]]
authid = "alice"
role = "user"
{principal}
"""
    with pytest.raises(ConfigError) as info:
        parse_config(text, base=tmp_path, name="secrets.toml")
    assert secret not in str(info.value)
    path = tmp_path / "secrets.toml"
    path.write_text(text)
    assert main(["router", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "error" in err
    assert secret not in err


def test_an_unloadable_tls_key_is_not_echoed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_tls_contexts(tmp_path)
    (tmp_path / "bad.pem").write_text(
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n"
    )
    path = tmp_path / "tls.toml"
    path.write_text(
        '[[listeners]]\ntype = "tcp"\nport = 0\ntls = { cert = "cert.pem", key = "bad.pem" }\n'
    )
    assert main(["router", "--config", str(path), "--no-unix"]) == 2
    err = capsys.readouterr().err
    assert "bad.pem" in err  # the key is named ...
    assert "c2VjcmV0LWtleS1tYXRlcmlhbA" not in err  # ... not shown


def test_credentials_do_not_show_in_reprs(tmp_path: Path) -> None:
    """A principal or a configuration printed (a debugger, a traceback with
    locals, a log of the object) shows no credential."""
    make_tls_contexts(tmp_path)
    config = parse_config(config_text(), base=tmp_path, name="secrets.toml")
    principal = wamp_core.Principal(
        "user",
        ticket=ALICE_TICKET,
        wampcra=wamp_core.CraCredential(BOB_SECRET),
        credentials={"wamp-scram": FRANK},
    )
    for shown in (repr(principal), repr(config)):
        for secret in (ALICE_TICKET, BOB_SECRET, CAROL_KEY, BACKEND_TICKET, repr(FRANK.stored_key)):
            assert secret not in shown
