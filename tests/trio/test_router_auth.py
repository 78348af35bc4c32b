"""examples/router-auth.toml, served over real sockets: every principal
authenticates with its method, wrong credentials and anonymous sessions are
refused, and the roles' permissions hold."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import trio

import wamp_core
from wamp_core import ErrorURI
from wamp_trio import open_transport
from wamp_trio._config import TcpListener, build_router, load_config, parse_config
from wamp_trio._host import RouterHost, serve_router
from wamp_trio._transport import MessageTransport, TransportClosed

EXAMPLE = Path(__file__).parents[2] / "examples" / "router-auth.toml"
# The example names the public key the project's documentation gives dave; its
# private key is not part of the repository, so the full cryptosign flow runs
# with a test key put in its place (the test below checks the example's own key).
EXAMPLE_DAVE_KEY = "f246e25a8abb99325c0210846cf09025ca227fa4d4918672ead04de54f4f1727"
DAVE_SEED = "ff29333a2e752b8e60602f9e59b0d63265b97c1a01d480ffe0db99f00e7267b2"
NOT_AUTHORIZED = ErrorURI.NOT_AUTHORIZED
FAILED = ErrorURI.AUTHENTICATION_FAILED


class Client:
    """A ClientSession over a real transport, driven by hand."""

    def __init__(self, transport: MessageTransport) -> None:
        self.transport = transport
        self.session = wamp_core.ClientSession(transport.serializer)
        self.backlog: list[wamp_core.SessionEvent] = []

    async def flush(self) -> None:
        for data in self.session.data_to_send():
            await self.transport.send(data)

    async def next_event(self) -> wamp_core.SessionEvent:
        await self.flush()
        while not self.backlog:
            self.backlog.extend(self.session.receive_data(await self.transport.receive()))
            await self.flush()
        return self.backlog.pop(0)

    async def expect(self, kind: type[Any]) -> Any:
        event = await self.next_event()
        assert isinstance(event, kind), event
        return event

    async def outcome(self, request: Callable[[], object]) -> str:
        """Send one request; "ok" or the ERROR's URI."""
        request()
        event = await self.next_event()
        if isinstance(event, wamp_core.ErrorReceived):
            return event.error
        return "ok"


Answer = Callable[[wamp_core.ChallengeReceived], tuple[str, dict[str, Any]]]


@contextlib.asynccontextmanager
async def example_router() -> AsyncIterator[str]:
    """The example configuration on a free port; yields its WebSocket URL."""
    text = EXAMPLE.read_text()
    assert EXAMPLE_DAVE_KEY in text
    text = text.replace(EXAMPLE_DAVE_KEY, wamp_core.CryptosignKey(DAVE_SEED).public_key_hex)
    config = parse_config(text, base=EXAMPLE.parent, name=str(EXAMPLE))
    (listener,) = config.listeners
    assert isinstance(listener, TcpListener)
    assert (listener.host, listener.port, listener.websocket) == ("127.0.0.1", 8080, "/ws")
    host = RouterHost(build_router(config))
    async with trio.open_nursery() as nursery:
        endpoints = await nursery.start(serve_router, host, [dataclasses.replace(listener, port=0)])
        with trio.fail_after(60):
            yield next(e.url for e in endpoints if e.kind == "websocket")
        nursery.cancel_scope.cancel()


async def join(
    stack: contextlib.AsyncExitStack,
    url: str,
    answer: Answer | None = None,
    **hello: Any,
) -> tuple[Client, wamp_core.SessionEvent]:
    """Connect and join realm1; the SessionJoined or SessionAborted event."""
    client = Client(await stack.enter_async_context(open_transport(url)))
    client.session.join("realm1", **hello)
    event = await client.next_event()
    if isinstance(event, wamp_core.ChallengeReceived):
        assert answer is not None, event
        client.session.authenticate(*answer(event))
        event = await client.next_event()
    return client, event


def ticket(value: str) -> Answer:
    return lambda _: (value, {})


def cra(secret: str) -> Answer:
    return lambda challenge: (wamp_core.wampcra_signature(secret, challenge.extra), {})


def cryptosign(key: wamp_core.CryptosignKey) -> Answer:
    return lambda challenge: (key.respond(challenge.extra), {})


DAVE = wamp_core.CryptosignKey(DAVE_SEED)


def logins() -> dict[str, tuple[dict[str, Any], Answer]]:
    erin = wamp_core.ScramClient("erin", "erin-password")
    autobahn_erin = wamp_core.ScramClient("erin", "erin-password", authmethods=["scram"])
    return {
        "alice": ({"authmethods": ["ticket"], "authid": "alice"}, ticket("alice-ticket")),
        "bob": ({"authmethods": ["wampcra"], "authid": "bob"}, cra("bob-secret")),
        "carol": ({"authmethods": ["wampcra"], "authid": "carol"}, cra("carol-secret")),
        "dave": (
            {"authmethods": ["cryptosign"], "authid": "dave", "authextra": DAVE.hello_authextra()},
            cryptosign(DAVE),
        ),
        "dave-by-key": (
            {"authmethods": ["cryptosign"], "authextra": DAVE.hello_authextra()},
            cryptosign(DAVE),
        ),
        "erin": (erin.hello(), lambda c: erin.challenge(c.authmethod, c.extra)),
        "erin-scram": (
            autobahn_erin.hello(),
            lambda c: autobahn_erin.challenge(c.authmethod, c.extra),
        ),
        "guest": ({"authmethods": ["ticket"], "authid": "guest"}, ticket("guest-ticket")),
    }


EXPECTED = {
    "alice": ("alice", "user", "ticket"),
    "bob": ("bob", "user", "wampcra"),
    "carol": ("carol", "user", "wampcra"),
    "dave": ("dave", "user", "cryptosign"),
    "dave-by-key": ("dave", "user", "cryptosign"),
    "erin": ("erin", "user", "wamp-scram"),
    "erin-scram": ("erin", "user", "scram"),
    "guest": ("guest", "guest", "ticket"),
}


async def test_every_principal_authenticates() -> None:
    async with example_router() as url, contextlib.AsyncExitStack() as stack:
        for name, (hello, answer) in logins().items():
            _, event = await join(stack, url, answer, **hello)
            assert isinstance(event, wamp_core.SessionJoined), (name, event)
            details = event.details
            got = (details["authid"], details["authrole"], details["authmethod"])
            assert got == EXPECTED[name], name
            assert details["authprovider"] == "static"


async def test_wrong_credentials_and_anonymous_are_refused() -> None:
    other_key = wamp_core.CryptosignKey(bytes(32))
    wrong_erin = wamp_core.ScramClient("erin", "not-erin's")
    attempts: list[tuple[dict[str, Any], Answer | None, str]] = [
        ({"authmethods": ["ticket"], "authid": "alice"}, ticket("guest-ticket"), FAILED),
        ({"authmethods": ["ticket"], "authid": "mallory"}, ticket("alice-ticket"), FAILED),
        ({"authmethods": ["wampcra"], "authid": "bob"}, cra("carol-secret"), FAILED),
        ({"authmethods": ["wampcra"], "authid": "carol"}, cra("bob-secret"), FAILED),
        # alice has no WAMP-CRA secret: a decoy challenge, then the same failure
        ({"authmethods": ["wampcra"], "authid": "alice"}, cra("alice-ticket"), FAILED),
        (
            {
                "authmethods": ["cryptosign"],
                "authid": "dave",
                "authextra": other_key.hello_authextra(),
            },
            cryptosign(other_key),
            FAILED,
        ),
        (wrong_erin.hello(), lambda c: wrong_erin.challenge(c.authmethod, c.extra), FAILED),
        ({}, None, ErrorURI.NO_MATCHING_AUTH_METHOD),  # anonymous
        ({"authmethods": ["anonymous"]}, None, ErrorURI.NO_MATCHING_AUTH_METHOD),
    ]
    async with example_router() as url, contextlib.AsyncExitStack() as stack:
        for hello, answer, reason in attempts:
            _, event = await join(stack, url, answer, **hello)
            assert isinstance(event, wamp_core.SessionAborted), (hello, event)
            assert event.reason == reason, (hello, event)


async def test_other_realms_are_refused() -> None:
    async with example_router() as url, contextlib.AsyncExitStack() as stack:
        client = Client(await stack.enter_async_context(open_transport(url)))
        client.session.join("realm2", authmethods=["ticket"], authid="alice")
        event = await client.expect(wamp_core.SessionAborted)
        assert event.reason == ErrorURI.NO_SUCH_REALM


async def test_permissions_of_user_and_guest() -> None:
    logins_ = logins()
    async with example_router() as url, contextlib.AsyncExitStack() as stack:
        alice, joined = await join(stack, url, logins_["alice"][1], **logins_["alice"][0])
        assert isinstance(joined, wamp_core.SessionJoined)
        guest, joined = await join(stack, url, logins_["guest"][1], **logins_["guest"][0])
        assert isinstance(joined, wamp_core.SessionJoined)
        user, guest_s = alice.session, guest.session

        # register: user under com.example., guest nowhere
        assert await alice.outcome(lambda: user.register("com.example.public.echo")) == "ok"
        assert await alice.outcome(lambda: user.register("com.example.private.echo")) == "ok"
        assert await alice.outcome(lambda: user.register("org.other.echo")) == NOT_AUTHORIZED
        assert (
            await alice.outcome(lambda: user.register("com.", {"match": "prefix"}))
            == NOT_AUTHORIZED
        )
        assert (
            await guest.outcome(lambda: guest_s.register("com.example.public.mine"))
            == NOT_AUTHORIZED
        )

        # call: guest only under com.example.public.
        async def call(client: Client, procedure: str) -> str:
            client.session.call(procedure, [1])
            await client.flush()
            with trio.move_on_after(0.2):
                # the callee is alice: answer her INVOCATION if one comes
                invocation = await alice.expect(wamp_core.InvocationReceived)
                user.yield_result(invocation.request_id, invocation.args)
                await alice.flush()
            event = await client.next_event()
            if isinstance(event, wamp_core.ErrorReceived):
                return event.error
            assert isinstance(event, wamp_core.ResultReceived), event
            assert event.args == [1]
            return "ok"

        assert await call(guest, "com.example.public.echo") == "ok"
        assert await call(guest, "com.example.private.echo") == NOT_AUTHORIZED

        # subscribe: both under their prefixes
        assert await guest.outcome(lambda: guest_s.subscribe("com.example.public.news")) == "ok"
        assert (
            await guest.outcome(
                lambda: guest_s.subscribe("com.example.public.", {"match": "prefix"})
            )
            == "ok"
        )
        assert (
            await guest.outcome(lambda: guest_s.subscribe("com.example.private.news"))
            == NOT_AUTHORIZED
        )
        assert (
            await guest.outcome(lambda: guest_s.subscribe("com.example.", {"match": "prefix"}))
            == NOT_AUTHORIZED
        )
        assert await alice.outcome(lambda: user.subscribe("com.example.private.news")) == "ok"
        assert await alice.outcome(lambda: user.subscribe("org.other.news")) == NOT_AUTHORIZED

        # publish: user under com.example., guest nowhere
        assert (
            await guest.outcome(
                lambda: guest_s.publish("com.example.public.news", ["x"], acknowledge=True)
            )
            == NOT_AUTHORIZED
        )
        assert (
            await alice.outcome(lambda: user.publish("org.other.news", ["x"], acknowledge=True))
            == NOT_AUTHORIZED
        )
        user.publish("com.example.public.news", ["hello"], acknowledge=True)
        assert isinstance(await alice.next_event(), wamp_core.PublishSucceeded)
        event = await guest.expect(wamp_core.EventReceived)
        assert event.args == ["hello"]

        # the router's own procedures are outside com.example. too
        assert await alice.outcome(lambda: user.call("wamp.session.count")) == NOT_AUTHORIZED


def test_the_command_serves_the_example(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "wamp_trio", "router", "--config", str(EXAMPLE), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        assert lines[0].startswith("listening: ws://127.0.0.1:"), lines
        assert lines[0].rstrip().endswith("/ws")
        assert lines[1].startswith("listening: http://127.0.0.1:")
        assert lines[2].startswith("listening: rs://127.0.0.1:")
        assert ":8080" not in lines[0]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            _, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover
            process.kill()
            raise
    assert process.returncode == 0, stderr


@pytest.mark.parametrize("flag", ["--realm", "--port"])
def test_flags_keep_the_secured_realm(flag: str) -> None:
    from wamp_trio._cli import _build_parser, router_config

    args = _build_parser().parse_args(
        ["router", "--config", str(EXAMPLE), flag, "realm2" if flag == "--realm" else "0"]
    )
    config = router_config(args)
    realm1 = config.realms[0]
    assert realm1.name == "realm1"
    assert realm1.secured
    assert [p.authid for p in realm1.principals] == [
        "alice",
        "bob",
        "carol",
        "dave",
        "erin",
        "guest",
    ]
    if flag == "--realm":
        assert config.realms[1].name == "realm2"
        assert not config.realms[1].secured


# -- TLS: client certificates and channel binding ------------------------------------------


async def test_tls_reports_the_client_certificate_and_channel_binding(tmp_path: Path) -> None:
    from wamp_trio._config import TlsConfig
    from wamp_trio._listen import serve_tcp, tls_server_end_point

    from .test_listen import make_tls

    make_tls(tmp_path)
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    server = TlsConfig(cert, key, ca=cert, client_cert="required").ssl_context()
    end_point = tls_server_end_point(cert)
    client = ssl.create_default_context(cafile=cert)
    client.load_cert_chain(cert, key)
    infos: list[dict[str, Any]] = []

    async def handler(transport: MessageTransport) -> None:
        infos.append(transport.info)
        await transport.receive()

    async with trio.open_nursery() as nursery:
        (listener,) = await nursery.start(
            functools.partial(
                serve_tcp,
                handler,
                "127.0.0.1",
                0,
                ssl_context=server,
                tls_server_end_point=end_point,
            )
        )
        port = listener.transport_listener.socket.getsockname()[1]
        with trio.fail_after(10):
            async with open_transport(f"wss://127.0.0.1:{port}/ws", ssl_context=client):
                while not infos:
                    await trio.sleep(0.01)
            # Without a client certificate the handshake fails.
            anonymous = ssl.create_default_context(cafile=cert)
            with pytest.raises((TransportClosed, OSError)):
                async with open_transport(f"rss://127.0.0.1:{port}", ssl_context=anonymous) as t:
                    await t.receive()
        nursery.cancel_scope.cancel()
    (info,) = infos
    assert info["tls"] is True
    assert info["tls_peer_cn"] == "wamp-core test"
    assert info["tls_peer_subject"] == {"commonName": "wamp-core test"}
    assert info["tls_peer_issuer"] == {"commonName": "wamp-core test"}
    binding = info[wamp_core.CHANNEL_BINDING]["tls-unique"]
    assert isinstance(binding, bytes)
    assert len(binding) >= 12
    # RFC 5929: the hash of the certificate the client saw (ECDSA with SHA-256 here).
    der = ssl.PEM_cert_to_DER_cert(Path(cert).read_text())
    assert info[wamp_core.CHANNEL_BINDING]["tls-server-end-point"] == hashlib.sha256(der).digest()


async def test_tls_authmethod_admits_the_client_certificate_principal(tmp_path: Path) -> None:
    """A principal with ``tls = true`` whose authid is the client certificate's
    CN joins without a CHALLENGE; another HELLO authid is refused."""
    from .test_listen import make_tls

    make_tls(tmp_path)
    toml = """
[[listeners]]
type = "tcp"
host = "127.0.0.1"
port = 0
websocket = "/ws"
tls = { cert = "cert.pem", key = "key.pem", ca = "cert.pem", client_cert = "required" }

[[realms]]
name = "realm1"

[[realms.roles]]
name = "device"

[[realms.principals]]
authid = "wamp-core test"
role = "device"
tls = true

[[realms.principals]]
authid = "alice"
role = "device"
ticket = "alice-ticket"
"""
    config = parse_config(toml, base=tmp_path)
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    client_tls = ssl.create_default_context(cafile=cert)
    client_tls.load_cert_chain(cert, key)
    host = RouterHost(build_router(config))
    async with trio.open_nursery() as nursery:
        endpoints = await nursery.start(serve_router, host, list(config.listeners))
        url = next(e.url for e in endpoints if e.kind == "websocket")
        assert url.startswith("wss://")
        with trio.fail_after(30):
            cases: list[tuple[dict[str, Any], str]] = [({}, "ok"), ({"authid": "alice"}, FAILED)]
            for hello, expected in cases:
                async with open_transport(url, ssl_context=client_tls) as transport:
                    client = Client(transport)
                    client.session.join("realm1", authmethods=["tls"], **hello)
                    event = await client.next_event()
                    if expected == "ok":
                        assert isinstance(event, wamp_core.SessionJoined), event
                        assert event.details["authid"] == "wamp-core test"
                        assert event.details["authrole"] == "device"
                        assert event.details["authmethod"] == "tls"
                    else:
                        assert isinstance(event, wamp_core.SessionAborted), event
                        assert event.reason == expected
        nursery.cancel_scope.cancel()


async def test_open_and_secured_realms_side_by_side() -> None:
    toml = EXAMPLE.read_text() + '\n[[realms]]\nname = "open"\n'
    config = parse_config(toml).replace(auto_create_realms=True)
    host = RouterHost(build_router(config))
    tcp = config.listeners[0]
    assert isinstance(tcp, TcpListener)
    listener = dataclasses.replace(tcp, port=0)
    async with trio.open_nursery() as nursery, contextlib.AsyncExitStack() as stack:
        endpoints = await nursery.start(serve_router, host, [listener])
        url = endpoints[0].url
        with trio.fail_after(30):
            for realm in ("open", "auto.created"):
                client = Client(await stack.enter_async_context(open_transport(url)))
                client.session.join(realm)
                joined = await client.expect(wamp_core.SessionJoined)
                assert joined.details["authrole"] == "anonymous"
                # everything allowed, identity disclosed on request
                register = functools.partial(client.session.register, "x.y")
                assert await client.outcome(register) == "ok"
                publish = functools.partial(
                    client.session.publish,
                    "x.y",
                    options={"disclose_me": True},
                    acknowledge=True,
                )
                assert await client.outcome(publish) == "ok"
            _, event = await join(stack, url)
            assert isinstance(event, wamp_core.SessionAborted)
        nursery.cancel_scope.cancel()


async def test_example_dave_key_is_challenged_and_a_wrong_signature_refused() -> None:
    """With the example file as shipped: dave's public key gets a cryptosign
    CHALLENGE, and a signature made with another key is refused."""
    config = load_config(EXAMPLE)
    router = build_router(config)
    net_client = wamp_core.ClientSession("json")
    slot = router.attach(net_client.serializer)
    net_client.join(
        "realm1",
        authmethods=["cryptosign"],
        authid="dave",
        authextra={"pubkey": EXAMPLE_DAVE_KEY},
    )
    for data in net_client.data_to_send():
        router.receive_data(slot, data)
    (challenge,) = [
        event
        for delivery in router.data_to_send()
        for event in net_client.receive_data(delivery.data or b"")
    ]
    assert isinstance(challenge, wamp_core.ChallengeReceived)
    assert challenge.authmethod == "cryptosign"
    impostor = wamp_core.CryptosignKey(DAVE_SEED)
    net_client.authenticate(impostor.sign_challenge(challenge.extra["challenge"]))
    for data in net_client.data_to_send():
        router.receive_data(slot, data)
    (aborted,) = [
        event
        for delivery in router.data_to_send()
        for event in net_client.receive_data(delivery.data or b"")
    ]
    assert isinstance(aborted, wamp_core.SessionAborted)
    assert aborted.reason == FAILED


@pytest.mark.parametrize(
    ("kind", "digest"),
    [("ecdsa-sha384", "sha384"), ("ed25519", "sha256")],
)
def test_tls_server_end_point_hash_follows_rfc_5929(tmp_path: Path, kind: str, digest: str) -> None:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from cryptography.x509.oid import NameOID

    from wamp_trio._listen import tls_server_end_point

    key: Any
    if kind == "ed25519":
        key, algorithm = ed25519.Ed25519PrivateKey.generate(), None
    else:
        key, algorithm = ec.generate_private_key(ec.SECP256R1()), hashes.SHA384()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "end point")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, algorithm)
    )
    path = tmp_path / "cert.pem"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    der = certificate.public_bytes(serialization.Encoding.DER)
    assert tls_server_end_point(str(path)) == hashlib.new(digest, der).digest()
