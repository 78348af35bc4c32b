"""WAMP-SCRAM (wamp_core._scram): both spellings, both sides, through the core router.

Known answers come from outside this code: RFC 7677's SCRAM-SHA-256 exchange
(which AP/authentication_scram.md says its AuthMessage reproduces), OpenSSL's
Argon2id (via ``cryptography``) and Autobahn's own SCRAM client and credential
helper (``autobahn.wamp.auth``), driven without a network.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from types import SimpleNamespace
from typing import Any

import pytest

from tests.core.pair import Net, Peer
from wamp_core import (
    AuthChallenge,
    ChallengeReceived,
    ClientState,
    Deny,
    ErrorURI,
    HelloInfo,
    LocalProtocolError,
    Router,
    SessionAborted,
    SessionJoined,
)
from wamp_core._authmethods import Principal, PrincipalAuthenticator, TicketMethod
from wamp_core._scram import (
    AUTOBAHN_SCRAM,
    RFC_SCRAM,
    SCRAM_KDF_ARGON2ID13,
    SCRAM_KDF_ARGON2ID_13,
    SCRAM_KDF_PBKDF2,
    ScramAuthenticator,
    ScramClient,
    ScramCredential,
    ScramError,
    ScramMethod,
    _auth_message,
    _client_proof,
    _escape,
    _gs2_cbind,
    _hmac,
    _server_key,
    derive_scram_credential,
    saslprep,
    scram_salted_password,
)

PASSWORD = "pencil"
# Cheap, but at the client's default minimums (pbkdf2 >= 4096; argon2 m >= 512 KiB,
# t x m >= 32768).
PB = derive_scram_credential(PASSWORD, kdf=SCRAM_KDF_PBKDF2, iterations=4096)
A13 = derive_scram_credential(PASSWORD, kdf=SCRAM_KDF_ARGON2ID13, iterations=1, memory=32768)
AB = derive_scram_credential(PASSWORD, kdf=SCRAM_KDF_ARGON2ID_13, iterations=64, memory=512)
USERS: dict[str, tuple[str, ScramCredential]] = {
    "alice": ("user", PB),
    "bob": ("admin", A13),
    "carol": ("user", AB),
}
CB = b"\x5a" * 12  # what the adapter would report as the TLS Finished message
FAILED = "authentication failed"
DENIED = Deny(ErrorURI.AUTHENTICATION_FAILED, FAILED)


def alice() -> Principal:
    return Principal("user", authid="alice", credentials={RFC_SCRAM: PB})


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def fixed(octet: int) -> Any:
    return lambda n: bytes([octet]) * n


def scram_net(principals: Any = None, **kwargs: Any) -> Net:
    auth = ScramAuthenticator(USERS if principals is None else principals, **kwargs)
    return Net(Router(["realm1"], authenticator=auth))


def start(net: Net, scram: ScramClient, **hello: Any) -> tuple[Peer, ChallengeReceived]:
    peer = net.peer()
    peer.client.join("realm1", **scram.hello(**hello))
    net.pump()
    event = peer.last()
    assert isinstance(event, ChallengeReceived), event
    return peer, event


def finish(net: Net, peer: Peer, signature: str, extra: dict[str, Any]) -> Any:
    peer.client.authenticate(signature, extra)
    net.pump()
    return peer.last()


def login(net: Net, scram: ScramClient, **hello: Any) -> Any:
    peer, event = start(net, scram, **hello)
    return finish(net, peer, *scram.challenge(event.authmethod, event.extra))


def info(details: dict[str, Any], transport: dict[str, Any] | None = None) -> HelloInfo:
    return HelloInfo("realm1", details, 1, transport or {})


def hello_details(
    authid: str | None = "alice", method: str = RFC_SCRAM, **authextra: Any
) -> dict[str, Any]:
    details: dict[str, Any] = {"authmethods": [method], "authextra": authextra}
    if authid is not None:
        details["authid"] = authid
    return details


# -- full flows -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("authid", "kdf"), [("alice", SCRAM_KDF_PBKDF2), ("bob", SCRAM_KDF_ARGON2ID13)]
)
def test_rfc_spelling_flow(authid: str, kdf: str) -> None:
    net = scram_net()
    scram = ScramClient(authid, PASSWORD)
    peer, challenge = start(net, scram)
    assert challenge.authmethod == RFC_SCRAM
    extra = challenge.extra
    assert set(extra) == {"nonce", "salt", "kdf", "iterations", "memory"}
    assert extra["kdf"] == kdf
    assert (extra["memory"] is None) == (kdf == SCRAM_KDF_PBKDF2)
    client_nonce = scram._attempt.nonce  # type: ignore[union-attr]
    assert extra["nonce"].startswith(client_nonce)  # string concatenation
    assert base64.b64decode(extra["nonce"][len(client_nonce) :])  # + base64(server octets)
    signature, answer = scram.challenge(challenge.authmethod, extra)
    assert answer == {"nonce": extra["nonce"], "channel_binding": None, "cbind_data": None}
    joined = finish(net, peer, signature, answer)
    assert isinstance(joined, SessionJoined)
    details = joined.details
    assert (details["authid"], details["authrole"]) == (authid, USERS[authid][0])
    assert (details["authmethod"], details["authprovider"]) == (RFC_SCRAM, "static")
    assert set(details["authextra"]) == {"verifier"}
    scram.welcome(details)


@pytest.mark.parametrize("authid", ["alice", "bob", "carol"])
def test_autobahn_spelling_flow(authid: str) -> None:
    net = scram_net()
    scram = ScramClient(authid, PASSWORD, authmethods=[AUTOBAHN_SCRAM])
    peer, challenge = start(net, scram)
    assert challenge.authmethod == AUTOBAHN_SCRAM
    extra = challenge.extra
    # Autobahn's client refuses any other key, and a null memory.
    allowed = {"nonce", "kdf", "salt", "iterations", "memory", "channel_binding"}
    assert set(extra) <= allowed
    assert ("memory" in extra) == (extra["kdf"] != SCRAM_KDF_PBKDF2)
    client_octets = base64.b64decode(scram._attempt.nonce)  # type: ignore[union-attr]
    combined = base64.b64decode(extra["nonce"])  # Crossbar: octets joined, then base64
    assert combined.startswith(client_octets)
    assert len(combined) == 32
    signature, answer = scram.challenge(challenge.authmethod, extra)
    assert answer == {}  # as Autobahn
    joined = finish(net, peer, signature, answer)
    assert isinstance(joined, SessionJoined)
    assert joined.details["authmethod"] == AUTOBAHN_SCRAM
    assert set(joined.details["authextra"]) == {"scram_server_signature"}
    scram.welcome(joined.details)


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [((AUTOBAHN_SCRAM, RFC_SCRAM), AUTOBAHN_SCRAM), ((RFC_SCRAM, AUTOBAHN_SCRAM), RFC_SCRAM)],
)
def test_client_order_picks_the_spelling(offered: tuple[str, str], chosen: str) -> None:
    net = scram_net()
    scram = ScramClient("bob", PASSWORD, authmethods=offered)
    joined = login(net, scram)
    assert joined.details["authmethod"] == chosen
    scram.welcome(joined.details)


@pytest.mark.parametrize("serializer", ["json", "msgpack", "cbor"])
@pytest.mark.parametrize("method", [RFC_SCRAM, AUTOBAHN_SCRAM])
def test_every_serializer(serializer: str, method: str) -> None:
    net = scram_net()
    scram = ScramClient("alice", PASSWORD, authmethods=[method])
    peer = net.peer(serializer)
    peer.client.join("realm1", **scram.hello())
    net.pump()
    event = peer.last()
    assert isinstance(event, ChallengeReceived)
    joined = finish(net, peer, *scram.challenge(event.authmethod, event.extra))
    assert isinstance(joined, SessionJoined)
    scram.welcome(joined.details)


def test_salted_password_is_cached_across_attempts() -> None:
    net = scram_net()
    scram = ScramClient("bob", PASSWORD)
    for _ in range(2):
        scram.welcome(login(net, scram).details)
    assert len(scram._cache) == 1


# -- failures ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", [RFC_SCRAM, AUTOBAHN_SCRAM])
def test_wrong_password_and_unknown_user_look_alike(method: str) -> None:
    net = scram_net()
    wrong = login(net, ScramClient("alice", "pencil!", authmethods=[method]))
    assert isinstance(wrong, SessionAborted)
    assert (wrong.reason, wrong.message) == (ErrorURI.AUTHENTICATION_FAILED, FAILED)

    # An unknown authid gets a mock CHALLENGE: same costs, a salt stable per authid.
    scram = ScramClient("mallory", PASSWORD, authmethods=[method])
    salts = set()
    for _ in range(2):
        peer, challenge = start(net, scram)
        assert (challenge.extra["kdf"], challenge.extra["iterations"]) == (SCRAM_KDF_PBKDF2, 4096)
        salts.add(challenge.extra["salt"])
        unknown = finish(net, peer, *scram.challenge(challenge.authmethod, challenge.extra))
        assert isinstance(unknown, SessionAborted)
        assert (unknown.reason, unknown.message) == (wrong.reason, wrong.message)
    assert len(salts) == 1


def test_decoy_salt_follows_the_decoy_key() -> None:
    hello = info(hello_details("mallory", nonce=b64(bytes(16))))

    def salt(method: ScramMethod) -> str:
        challenge = method.challenge(hello, None)
        assert isinstance(challenge, AuthChallenge)
        return str(challenge.extra["salt"])

    assert salt(ScramMethod(decoy_key=b"k" * 32)) == salt(ScramMethod(decoy_key=b"k" * 32))
    assert salt(ScramMethod()) != salt(ScramMethod())
    # Both spellings of one authenticator share the key: one salt per authid.
    rfc, autobahn = methods_of(ScramAuthenticator(USERS))
    assert salt(rfc) == salt(autobahn)


def test_tampered_proof_is_refused() -> None:
    net = scram_net()
    scram = ScramClient("alice", PASSWORD)
    peer, challenge = start(net, scram)
    signature, answer = scram.challenge(challenge.authmethod, challenge.extra)
    proof = bytearray(base64.b64decode(signature))
    proof[0] ^= 1
    aborted = finish(net, peer, b64(bytes(proof)), answer)
    assert isinstance(aborted, SessionAborted)
    assert aborted.message == FAILED


@pytest.mark.parametrize("signature", ["not base64!", b64(b"short"), b64(bytes(32)) + " "])
def test_malformed_proof_is_refused(signature: str) -> None:
    net = scram_net()
    scram = ScramClient("alice", PASSWORD)
    peer, challenge = start(net, scram)
    _, answer = scram.challenge(challenge.authmethod, challenge.extra)
    aborted = finish(net, peer, signature, answer)
    assert isinstance(aborted, SessionAborted)
    assert aborted.message == FAILED


@pytest.mark.parametrize("method", [RFC_SCRAM, AUTOBAHN_SCRAM])
def test_replayed_authenticate_fails(method: str) -> None:
    """Same client nonce (an attacker replays HELLO too): the server nonce differs."""
    net = scram_net()
    scram = ScramClient("alice", PASSWORD, authmethods=[method], random=fixed(7))
    peer, challenge = start(net, scram)
    captured = scram.challenge(challenge.authmethod, challenge.extra)
    assert isinstance(finish(net, peer, *captured), SessionJoined)
    peer, again = start(net, scram)
    assert again.extra["nonce"] != challenge.extra["nonce"]
    replayed = finish(net, peer, *captured)
    assert isinstance(replayed, SessionAborted)
    assert replayed.message == FAILED


def test_a_challenge_is_good_once() -> None:
    method = ScramMethod()
    scram = ScramClient("alice", PASSWORD)
    hello = info(scram.hello() | {"authmethods": [RFC_SCRAM]})
    principal = alice()
    challenge = method.challenge(hello, principal)
    assert isinstance(challenge, AuthChallenge)
    answer = scram.challenge(challenge.authmethod, challenge.extra)
    accepted = method.verify(hello, principal, challenge, *answer)
    assert accepted.authrole == "user"  # type: ignore[union-attr]
    assert method.verify(hello, principal, challenge, *answer) == DENIED


def test_no_principal_no_entry() -> None:
    """A right proof without a principal (the decoy contract) is still refused."""
    method = ScramMethod()
    scram = ScramClient("alice", PASSWORD)
    hello = info(scram.hello() | {"authmethods": [RFC_SCRAM]})
    challenge = method.challenge(hello, alice())
    assert isinstance(challenge, AuthChallenge)
    answer = scram.challenge(challenge.authmethod, challenge.extra)
    assert method.verify(hello, None, challenge, *answer) == DENIED


def test_late_authenticate_fails() -> None:
    clock = [100.0]
    net = scram_net(now=lambda: clock[0], max_age=10.0)
    scram = ScramClient("alice", PASSWORD)
    peer, challenge = start(net, scram)
    clock[0] = 110.0  # exactly the timeout: still in time
    assert isinstance(
        finish(net, peer, *scram.challenge("wamp-scram", challenge.extra)), SessionJoined
    )
    peer, challenge = start(net, scram)
    clock[0] = 120.5
    late = finish(net, peer, *scram.challenge("wamp-scram", challenge.extra))
    assert isinstance(late, SessionAborted)
    assert late.message == FAILED


def test_challenge_state_from_elsewhere_is_refused() -> None:
    method = ScramMethod()
    hello = info(hello_details(nonce=b64(bytes(16))))
    foreign = AuthChallenge(RFC_SCRAM, {}, state="not ours")
    assert method.verify(hello, None, foreign, "", {}) == DENIED
    no_authid = info({"authmethods": [RFC_SCRAM], "authextra": {"nonce": b64(bytes(16))}})
    assert not method.accepts(no_authid)
    denied = method.challenge(no_authid, alice())
    assert isinstance(denied, Deny)
    assert "authid" in (denied.message or "")


# -- HELLO refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("details", "reason", "message"),
    [
        ({"authmethods": ["ticket"], "authid": "alice"}, "no_matching_auth_method", "none"),
        (hello_details(None, nonce=b64(bytes(16))), "no_matching_auth_method", "none"),
        ({"authmethods": [RFC_SCRAM], "authid": "alice"}, "authentication_failed", "nonce"),
        ({**hello_details(), "authextra": "x"}, "authentication_failed", "nonce"),
        (hello_details(nonce=""), "authentication_failed", "nonce"),
        (hello_details(nonce="not base64"), "authentication_failed", "nonce"),
        (hello_details(nonce="AAB="), "authentication_failed", "nonce"),  # not canonical
        (hello_details(nonce="\u00e9AAA"), "authentication_failed", "nonce"),
        (hello_details(nonce=7), "authentication_failed", "nonce"),
        (
            hello_details("\u0007", AUTOBAHN_SCRAM, nonce=b64(bytes(16))),
            "authentication_failed",
            "SASLprep",
        ),
    ],
)
def test_hello_refusals(details: dict[str, Any], reason: str, message: str) -> None:
    denied = ScramAuthenticator(USERS).hello(info(details))
    assert isinstance(denied, Deny)
    assert denied.reason == f"wamp.error.{reason}"
    assert message in (denied.message or "")


def test_one_method_object_per_spelling() -> None:
    hello = info(hello_details(nonce=b64(bytes(16))) | {"authmethods": ["ticket"]})
    challenge = ScramMethod(AUTOBAHN_SCRAM).challenge(hello, None)
    assert isinstance(challenge, AuthChallenge)
    assert challenge.authmethod == AUTOBAHN_SCRAM
    with pytest.raises(ValueError, match="authmethod"):
        ScramMethod("ticket")


def methods_of(auth: ScramAuthenticator) -> list[ScramMethod]:
    return list(auth.authenticator.methods.values())  # type: ignore[arg-type]


def test_decoy_parameters() -> None:
    for method in methods_of(ScramAuthenticator({})):
        assert method.decoy_params == (SCRAM_KDF_ARGON2ID13, 3, 65536)
    chosen = (SCRAM_KDF_PBKDF2, 10000, None)
    assert methods_of(ScramAuthenticator(USERS, decoy_params=chosen))[1].decoy_params == chosen
    principals: dict[str, Any] = {
        "a": Principal("r", credentials={AUTOBAHN_SCRAM: AB}),
        "b": ("r", AB),
        "c": ("r", PB),
        "d": Principal("r", ticket="secret"),
    }
    for method in methods_of(ScramAuthenticator(principals)):
        assert method.decoy_params == (SCRAM_KDF_ARGON2ID_13, 64, 512)
    with pytest.raises(ValueError, match="KDF"):
        ScramMethod(decoy_params=("md5", 1, None))


def test_with_principal_authenticator() -> None:
    """The method objects in the general authenticator, next to ticket."""
    principals = {
        "realm1": {
            "alice": Principal("user", credentials={AUTOBAHN_SCRAM: PB}, trustlevel=2),
            "dave": Principal("user", ticket="secret"),
        }
    }
    auth = PrincipalAuthenticator(
        principals, methods=[TicketMethod(), ScramMethod(), ScramMethod(AUTOBAHN_SCRAM)]
    )
    net = Net(Router(["realm1"], authenticator=auth))
    scram = ScramClient("alice", PASSWORD)
    joined = login(net, scram)
    assert isinstance(joined, SessionJoined)
    assert (joined.details["authprovider"], joined.details["authmethod"]) == ("static", RFC_SCRAM)
    scram.welcome(joined.details)
    # dave has no SCRAM credential: a decoy CHALLENGE, then the usual failure.
    failed = login(net, ScramClient("dave", PASSWORD, authmethods=[AUTOBAHN_SCRAM]))
    assert isinstance(failed, SessionAborted)
    assert failed.message == FAILED


# -- AUTHENTICATE extra checks (direct) -------------------------------------------------------


def exchange(
    method_name: str = RFC_SCRAM,
    transport: dict[str, Any] | None = None,
    **hello: Any,
) -> tuple[ScramMethod, HelloInfo, AuthChallenge, str, dict[str, Any]]:
    method = ScramMethod(method_name)
    scram = ScramClient("alice", PASSWORD, authmethods=[method_name])
    join = scram.hello(**hello)
    hello_info = info({"authmethods": join["authmethods"], "authid": "alice", **join}, transport)
    challenge = method.challenge(hello_info, alice())
    assert isinstance(challenge, AuthChallenge), challenge
    signature, extra = scram.challenge(challenge.authmethod, challenge.extra)
    return method, hello_info, challenge, signature, extra


@pytest.mark.parametrize(
    "change",
    [
        {"nonce": None},
        {"nonce": 5},
        {"nonce": "AAAA"},
        {"channel_binding": "tls-unique"},
        {"cbind_data": b64(CB)},
    ],
)
def test_rfc_authenticate_extra_must_match(change: dict[str, Any]) -> None:
    method, hello, challenge, signature, extra = exchange()
    outcome = method.verify(hello, alice(), challenge, signature, extra | change)
    assert outcome == Deny(ErrorURI.AUTHENTICATION_FAILED, FAILED)


@pytest.mark.parametrize(
    ("change", "ok"),
    [
        ({}, True),
        ({"nonce": "same"}, True),
        ({"nonce": "AAAA"}, False),
        ({"nonce": 5}, False),
        ({"channel_binding": "tls-unique"}, False),
        ({"cbind_data": b64(CB)}, False),
        ({"channel_binding": None, "cbind_data": None}, True),
    ],
)
def test_autobahn_authenticate_extra(change: dict[str, Any], ok: bool) -> None:
    method, hello, challenge, signature, extra = exchange(AUTOBAHN_SCRAM)
    if change.get("nonce") == "same":
        change = {"nonce": challenge.extra["nonce"]}
    outcome = method.verify(hello, alice(), challenge, signature, extra | change)
    assert isinstance(outcome, Deny) != ok


# -- channel binding --------------------------------------------------------------------------


def bound_net(**bindings: bytes) -> tuple[Net, Peer]:
    net = scram_net()
    peer = net.peer()
    peer.slot.transport["channel_binding"] = {k.replace("_", "-"): v for k, v in bindings.items()}
    return net, peer


def bound_login(net: Net, peer: Peer, scram: ScramClient, **hello: Any) -> Any:
    peer.client.join("realm1", **scram.hello(**hello))
    net.pump()
    event = peer.last()
    if not isinstance(event, ChallengeReceived):
        return event
    return finish(net, peer, *scram.challenge(event.authmethod, event.extra))


@pytest.mark.parametrize("kind", ["tls-unique", "tls-server-end-point"])
def test_channel_binding_flow(kind: str) -> None:
    net, peer = bound_net(tls_unique=CB, tls_server_end_point=CB[::-1])
    data = CB if kind == "tls-unique" else CB[::-1]
    scram = ScramClient("alice", PASSWORD)
    joined = bound_login(net, peer, scram, channel_binding=kind, cbind_data=data)
    assert isinstance(joined, SessionJoined)
    scram.welcome(joined.details)


def test_channel_binding_with_other_data_fails() -> None:
    net, peer = bound_net(tls_unique=CB)
    scram = ScramClient("alice", PASSWORD)
    aborted = bound_login(net, peer, scram, channel_binding="tls-unique", cbind_data=b"mitm")
    assert isinstance(aborted, SessionAborted)
    assert aborted.message == FAILED


def test_channel_binding_data_must_be_sent() -> None:
    method, hello, challenge, signature, extra = exchange(
        transport={"channel_binding": {"tls-unique": CB}},
        channel_binding="tls-unique",
        cbind_data=CB,
    )
    assert extra["cbind_data"] == b64(CB)
    principal = alice()
    assert isinstance(
        method.verify(hello, principal, challenge, signature, extra | {"cbind_data": None}),
        Deny,
    )


@pytest.mark.parametrize(
    ("transport", "kind"),
    [
        ({}, "tls-unique"),
        ({"channel_binding": "yes"}, "tls-unique"),
        ({"channel_binding": {"tls-unique": CB}}, "tls-server-end-point"),
        ({"channel_binding": {"tls-unique": b""}}, "tls-unique"),
        ({"channel_binding": {"tls-unique": "text"}}, "tls-unique"),
        ({"channel_binding": {"tls-unique": CB}}, ["tls-unique"]),
    ],
)
def test_unavailable_channel_binding_is_refused(transport: dict[str, Any], kind: Any) -> None:
    hello = info(hello_details(nonce=b64(bytes(16)), channel_binding=kind), transport)
    denied = ScramMethod().challenge(hello, alice())
    assert isinstance(denied, Deny)
    assert "channel binding" in (denied.message or "")


def test_autobahn_spelling_refuses_channel_binding() -> None:
    hello = info(
        hello_details(method=AUTOBAHN_SCRAM, nonce=b64(bytes(16)), channel_binding="tls-unique"),
        {"channel_binding": {"tls-unique": CB}},
    )
    assert isinstance(ScramMethod(AUTOBAHN_SCRAM).challenge(hello, alice()), Deny)


def test_client_channel_binding_rules() -> None:
    scram = ScramClient("alice", PASSWORD)
    with pytest.raises(ValueError, match="one of"):
        scram.hello(channel_binding="tls-exporter", cbind_data=CB)
    with pytest.raises(ValueError, match="binding data"):
        scram.hello(channel_binding="tls-unique")
    with pytest.raises(ValueError, match="spelling"):
        ScramClient("a", "p", authmethods=[AUTOBAHN_SCRAM]).hello("tls-unique", CB)
    both = ScramClient("alice", PASSWORD, authmethods=[RFC_SCRAM, AUTOBAHN_SCRAM])
    join = both.hello("tls-unique", CB)
    assert join["authextra"]["channel_binding"] == "tls-unique"
    extra = challenge_extra(both, PB)
    with pytest.raises(ScramError, match="without channel binding"):
        both.challenge(AUTOBAHN_SCRAM, extra | {"nonce": join["authextra"]["nonce"] + "AAAA"})


# -- the client's checks on the CHALLENGE -----------------------------------------------------


def challenge_extra(scram: ScramClient, credential: ScramCredential) -> dict[str, Any]:
    """A well-formed CHALLENGE.Details for ``scram``'s current attempt."""
    assert scram._attempt is not None
    return {
        "nonce": scram._attempt.nonce + b64(bytes(16)),
        "salt": b64(credential.salt),
        "kdf": credential.kdf,
        "iterations": credential.iterations,
        "memory": credential.memory,
    }


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"kdf": SCRAM_KDF_PBKDF2, "iterations": 4095, "memory": None}, "unusually low"),
        ({"iterations": 10_000_001}, "too many"),
        ({"iterations": 4096, "memory": 256}, "unusually low"),  # below 512 KiB
        ({"iterations": 1, "memory": 16384}, "unusually low"),  # work below 32768
        ({"memory": 4 * 1024 * 1024 + 1}, "too much"),
        ({"memory": None}, "memory cost"),
        ({"memory": True}, "memory cost"),
        ({"salt": b64(b"1234567")}, "salt"),  # argon2 needs 8 octets: ScramError, no crash
    ],
)
def test_client_refuses_costs(change: dict[str, Any], match: str) -> None:
    scram = ScramClient("bob", PASSWORD)
    scram.hello()
    with pytest.raises(ScramError, match=match) as caught:
        scram.challenge(RFC_SCRAM, challenge_extra(scram, A13) | change)
    assert caught.value.reason == ErrorURI.AUTHENTICATION_FAILED


def test_client_aborts_a_low_cost_router() -> None:
    weak = derive_scram_credential(PASSWORD, kdf=SCRAM_KDF_PBKDF2, iterations=1000)
    net = scram_net({"alice": ("user", weak)})
    scram = ScramClient("alice", PASSWORD)
    peer, challenge = start(net, scram)
    with pytest.raises(ScramError) as caught:
        scram.challenge(challenge.authmethod, challenge.extra)
    peer.client.abort(caught.value.reason, caught.value.message)
    net.pump()
    assert peer.client.state is ClientState.CLOSED
    assert peer.slot.state.name == "CLOSED"
    # Lower limits can be configured: the same router is then acceptable.
    relaxed = ScramClient("alice", PASSWORD, min_pbkdf2_iterations=1000)
    assert isinstance(login(net, relaxed), SessionJoined)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"nonce": 5}, "malformed"),
        ({"salt": "not base64"}, "malformed"),
        ({"salt": ""}, "malformed"),
        ({"iterations": "4096"}, "malformed"),
        ({"iterations": True}, "malformed"),
        ({"kdf": "scrypt"}, "unknown KDF"),
        ({"nonce": "AAAA" + b64(bytes(16))}, "does not extend"),
        ({"nonce": "same"}, "does not extend"),  # equal is not longer
    ],
)
def test_client_refuses_malformed_challenges(change: dict[str, Any], match: str) -> None:
    scram = ScramClient("alice", PASSWORD)
    scram.hello()
    assert scram._attempt is not None
    if change.get("nonce") == "same":
        change = {"nonce": scram._attempt.nonce}
    with pytest.raises(ScramError, match=match):
        scram.challenge(RFC_SCRAM, challenge_extra(scram, PB) | change)


@pytest.mark.parametrize(
    "nonce",
    [
        "AAAA" + b64(bytes(16)),  # neither a string nor an octet prefix
        "not base64 at all",
        "same",  # the octets are no longer than the client's
    ],
)
def test_autobahn_spelling_nonce_prefix(nonce: str) -> None:
    scram = ScramClient("alice", PASSWORD, authmethods=[AUTOBAHN_SCRAM], random=fixed(9))
    scram.hello()
    extra = challenge_extra(scram, PB)
    if nonce == "same":
        nonce = b64(bytes([9]) * 16)
    with pytest.raises(ScramError, match="does not extend"):
        scram.challenge(AUTOBAHN_SCRAM, extra | {"nonce": nonce})
    # Both forms of extension are accepted in this spelling.
    string_form = extra["nonce"]
    scram.challenge(AUTOBAHN_SCRAM, extra | {"nonce": string_form})
    octet_form = b64(bytes([9]) * 16 + bytes(16))
    assert not octet_form.startswith(scram._attempt.nonce)  # type: ignore[union-attr]
    scram.challenge(AUTOBAHN_SCRAM, extra | {"nonce": octet_form})


def test_client_misuse() -> None:
    scram = ScramClient("alice", PASSWORD)
    with pytest.raises(LocalProtocolError):
        scram.challenge(RFC_SCRAM, {})
    scram.hello()
    with pytest.raises(ScramError, match="not offered"):
        scram.challenge(AUTOBAHN_SCRAM, challenge_extra(scram, PB))
    for bad in ("wamp-scram", [], ["wampcra"]):
        with pytest.raises(ValueError, match="authmethods"):
            ScramClient("alice", PASSWORD, authmethods=bad)
    with pytest.raises(ValueError, match="SASLprep"):
        ScramClient("\u0007", PASSWORD)


def test_client_password_failing_saslprep() -> None:
    scram = ScramClient("alice", "bell\u0007")
    scram.hello()
    with pytest.raises(ScramError, match="SASLprep"):
        scram.challenge(RFC_SCRAM, challenge_extra(scram, PB))
    # Below argon2's own floor (configured away): a ScramError too, never a crash.
    cheap = ScramClient("alice", PASSWORD, min_argon2_memory=0, min_argon2_work=0)
    cheap.hello()
    with pytest.raises(ScramError, match="8 KiB"):
        cheap.challenge(RFC_SCRAM, challenge_extra(cheap, A13) | {"memory": 4})


# -- the client's check of the WELCOME ---------------------------------------------------------


def welcomed(method: str = RFC_SCRAM) -> tuple[ScramClient, dict[str, Any]]:
    net = scram_net()
    scram = ScramClient("alice", PASSWORD, authmethods=[method])
    joined = login(net, scram)
    assert isinstance(joined, SessionJoined)
    return scram, joined.details


def test_welcome_with_v_prefix() -> None:
    """The spec's example WELCOME shows ``"v=<base64>"``; its text, plain base64."""
    scram, details = welcomed()
    verifier = details["authextra"]["verifier"]
    scram.welcome(details | {"authextra": {"verifier": "v=" + verifier}})


@pytest.mark.parametrize("method", [RFC_SCRAM, AUTOBAHN_SCRAM])
@pytest.mark.parametrize(
    "tamper",
    [
        lambda d: d | {"authmethod": "ticket"},
        lambda d: d | {"authextra": {}},
        lambda d: d | {"authextra": None},
        lambda d: d | {"authextra": {k: b64(bytes(32)) for k in d["authextra"]}},
        lambda d: d | {"authextra": dict.fromkeys(d["authextra"], "v=")},
    ],
)
def test_welcome_from_an_impostor(method: str, tamper: Any) -> None:
    scram, details = welcomed(method)
    with pytest.raises(ScramError):
        scram.welcome(tamper(details))


def test_welcome_without_scram() -> None:
    scram = ScramClient("alice", PASSWORD)
    with pytest.raises(ScramError, match="without WAMP-SCRAM"):
        scram.welcome({"authmethod": "anonymous"})
    scram.hello()
    with pytest.raises(ScramError, match="without WAMP-SCRAM"):
        scram.welcome({"authmethod": RFC_SCRAM})
    scram, details = welcomed()
    scram.welcome(details)
    with pytest.raises(ScramError):  # one WELCOME per attempt
        scram.welcome(details)


# -- known answers ----------------------------------------------------------------------------


def test_rfc7677_vector() -> None:
    """RFC 7677 section 3 (SCRAM-SHA-256): user "user", password "pencil"."""
    salt = "W22ZaJ0SNY7soEsUEjb6gQ=="
    nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    auth_message = _auth_message(
        name="user",
        client_nonce="rOprNGfwEbeRWgbNEkqO",
        nonce=nonce,
        salt=salt,
        iterations=4096,
        cbind=_gs2_cbind(None, None),
    )
    assert b",c=biws," in auth_message
    salted = scram_salted_password(
        "pencil", kdf=SCRAM_KDF_PBKDF2, salt=base64.b64decode(salt), iterations=4096
    )
    assert b64(_client_proof(salted, auth_message)) == (
        "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    )
    assert b64(_hmac(_server_key(salted), auth_message)) == (
        "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    )


def test_proof_by_independent_computation() -> None:
    """The client's proof, recomputed from the spec's pseudocode with hashlib/hmac."""
    scram = ScramClient("a,b=c", "pencil", random=fixed(3))
    join = scram.hello("tls-unique", CB)
    extra = challenge_extra(scram, PB)
    signature, _ = scram.challenge(RFC_SCRAM, extra)

    salted = hashlib.pbkdf2_hmac("sha256", b"pencil", PB.salt, 4096, 32)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    cbind = base64.b64encode(b"p=tls-unique,," + CB).decode()
    auth_message = (
        f"n=a=2Cb=3Dc,r={join['authextra']['nonce']},"
        f"r={extra['nonce']},s={extra['salt']},i=4096,"
        f"c={cbind},r={extra['nonce']}"
    ).encode()
    client_signature = hmac.new(
        hashlib.sha256(client_key).digest(), auth_message, "sha256"
    ).digest()
    expected = bytes(a ^ b for a, b in zip(client_key, client_signature))
    assert base64.b64decode(signature) == expected
    assert _escape("a,b=c") == "a=2Cb=3Dc"
    # And the stored credential agrees with the same derivation.
    assert PB.stored_key == hashlib.sha256(client_key).digest()
    assert PB.server_key == hmac.new(salted, b"Server Key", "sha256").digest()


def test_argon2id13_against_openssl() -> None:
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

    salt = bytes(range(16))
    ours = scram_salted_password(
        "pencil", kdf=SCRAM_KDF_ARGON2ID13, salt=salt, iterations=2, memory=64
    )
    theirs = Argon2id(salt=salt, length=32, iterations=2, lanes=1, memory_cost=64).derive(b"pencil")
    assert ours == theirs
    # Autobahn's form is the unpadded base64 text of the same octets.
    autobahn_form = scram_salted_password(
        "pencil", kdf=SCRAM_KDF_ARGON2ID_13, salt=salt, iterations=2, memory=64
    )
    assert autobahn_form == base64.b64encode(theirs).rstrip(b"=")
    assert len(autobahn_form) == 43


# -- Autobahn cross-checks ----------------------------------------------------------------------


@pytest.fixture
def autobahn(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``autobahn.wamp.auth`` with its SCRAM code enabled (passlib, which it wants
    for SASLprep, is not installed: ours, checked equal to passlib's, stands in)."""
    auth = pytest.importorskip("autobahn.wamp.auth")
    monkeypatch.setattr(auth, "HAS_ARGON", True)
    monkeypatch.setattr(auth, "saslprep", saslprep, raising=False)
    return auth


def test_autobahn_argon2id_13_salted_password(autobahn: Any) -> None:
    salt = bytes(range(16))
    theirs = autobahn._hash_argon2id13_secret(b"pencil", b64(salt), 3, 1024)
    ours = scram_salted_password(
        "pencil", kdf=SCRAM_KDF_ARGON2ID_13, salt=salt, iterations=3, memory=1024
    )
    assert ours == theirs


def test_autobahn_credential_is_readable(autobahn: Any) -> None:
    """``derive_scram_credential`` (what Crossbar's config takes) == ``derive_scram_credential``."""
    theirs = autobahn.derive_scram_credential("alice@example.com", PASSWORD)
    credential = ScramCredential.from_dict(theirs)
    ours = derive_scram_credential(
        PASSWORD, kdf=SCRAM_KDF_ARGON2ID_13, salt=credential.salt, iterations=4096, memory=512
    )
    assert ours == credential
    assert ours.to_dict() == theirs


def test_autobahn_client_against_our_router(autobahn: Any) -> None:
    from autobahn.wamp.types import Challenge

    net = scram_net()
    client = autobahn.AuthScram(authid="carol", password=PASSWORD)
    peer = net.peer()
    peer.client.join(
        "realm1", authmethods=[client.name], authid="carol", authextra=client.authextra
    )
    net.pump()
    event = peer.last()
    assert isinstance(event, ChallengeReceived)
    signature = client.on_challenge(None, Challenge(event.authmethod, event.extra))
    joined = finish(net, peer, signature.decode(), {})
    assert isinstance(joined, SessionJoined)
    log = SimpleNamespace(info=lambda *a, **k: None, error=lambda *a, **k: None)
    assert client.on_welcome(SimpleNamespace(log=log), joined.details["authextra"]) is None


def test_our_client_computes_what_crossbar_checks(autobahn: Any) -> None:
    """Crossbar verifies exactly Autobahn's computation: same inputs, same proof."""
    from autobahn.wamp.types import Challenge

    ours = ScramClient("carol", PASSWORD, authmethods=[AUTOBAHN_SCRAM])
    join = ours.hello()
    theirs = autobahn.AuthScram(authid="carol", password=PASSWORD)
    theirs._client_nonce = join["authextra"]["nonce"]
    client_octets = base64.b64decode(theirs._client_nonce)
    extra = {
        "nonce": b64(client_octets + bytes(range(16))),  # as Crossbar builds it
        "kdf": SCRAM_KDF_ARGON2ID_13,
        "salt": b64(AB.salt),
        "iterations": AB.iterations,
        "memory": AB.memory,
    }
    signature, _ = ours.challenge(AUTOBAHN_SCRAM, extra)
    assert signature == theirs.on_challenge(None, Challenge(AUTOBAHN_SCRAM, extra)).decode()


# -- credentials and SASLprep ------------------------------------------------------------------


def test_derive_credential_defaults() -> None:
    argon = derive_scram_credential(PASSWORD)
    assert (argon.kdf, argon.iterations, argon.memory, len(argon.salt)) == (
        SCRAM_KDF_ARGON2ID13,
        3,
        65536,
        16,
    )
    pbkdf2 = derive_scram_credential(PASSWORD, kdf=SCRAM_KDF_PBKDF2, salt=b"NaCl")
    assert (pbkdf2.iterations, pbkdf2.memory, pbkdf2.salt) == (600_000, None, b"NaCl")
    assert "stored_key" not in repr(pbkdf2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kdf": "md5"}, "unknown"),
        ({"kdf": SCRAM_KDF_PBKDF2, "iterations": 0}, "positive"),
        ({"kdf": SCRAM_KDF_PBKDF2, "iterations": True}, "positive"),
        ({"kdf": SCRAM_KDF_PBKDF2, "iterations": 1, "memory": 8}, "no memory"),
        ({"kdf": SCRAM_KDF_ARGON2ID13, "iterations": 1, "memory": 7}, "8 KiB"),
        ({"kdf": SCRAM_KDF_ARGON2ID13, "iterations": 1, "memory": 8.5}, "8 KiB"),
        ({"kdf": SCRAM_KDF_ARGON2ID13, "iterations": 1, "memory": 2**32}, "8 KiB"),
        ({"kdf": SCRAM_KDF_PBKDF2, "iterations": 2**32}, "positive"),
        ({"kdf": SCRAM_KDF_ARGON2ID_13, "iterations": 1, "memory": 8, "salt": b"1234567"}, "salt"),
    ],
)
def test_derive_credential_refuses(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        derive_scram_credential(PASSWORD, **kwargs)


def test_credential_validation_and_dict_form() -> None:
    with pytest.raises(ValueError, match="salt"):
        ScramCredential(SCRAM_KDF_PBKDF2, 4096, None, b"", bytes(32), bytes(32))
    with pytest.raises(ValueError, match="32 octets"):
        ScramCredential(SCRAM_KDF_PBKDF2, 4096, None, b"s", bytes(31), bytes(32))
    with pytest.raises(ValueError, match="32 octets"):
        ScramCredential(SCRAM_KDF_PBKDF2, 4096, None, b"s", bytes(32), bytes(33))
    assert ScramCredential.from_dict(A13.to_dict()) == A13
    crossbar_pbkdf2 = PB.to_dict() | {"memory": 512}  # Crossbar configs may carry one
    assert ScramCredential.from_dict(crossbar_pbkdf2) == PB


@pytest.mark.parametrize(
    ("text", "prepared"),
    [
        # RFC 4013 section 3
        ("I\u00adX", "IX"),
        ("user", "user"),
        ("USER", "USER"),
        ("\u00aa", "a"),
        ("\u2168", "IX"),
        ("\u0007", None),
        ("\u0627\u0031", None),
        # more
        ("a\u00a0b", "a b"),
        ("\u200bx", "x"),
        ("\uff35\uff33\uff25\uff32", "USER"),
        ("cafe\u0301", "caf\u00e9"),
        ("\u0627\u0031\u0627", "\u0627\u0031\u0627"),
        ("\u0627a\u0627", None),
        ("x\ue000", None),  # private use
        ("\U0001f600", None),  # unassigned in Unicode 3.2
        ("a\u3000b", "a b"),
        ("", ""),
    ],
)
def test_saslprep(text: str, prepared: str | None) -> None:
    if prepared is None:
        with pytest.raises(ValueError, match="SASLprep"):
            saslprep(text)
    else:
        assert saslprep(text) == prepared


def test_saslprep_applies_to_rfc_passwords_only() -> None:
    salt = b"0123456789abcdef"
    composed = scram_salted_password("caf\u00e9", kdf=SCRAM_KDF_PBKDF2, salt=salt, iterations=1)
    assert composed == scram_salted_password(
        "cafe\u0301", kdf=SCRAM_KDF_PBKDF2, salt=salt, iterations=1
    )
    args: dict[str, Any] = {
        "kdf": SCRAM_KDF_ARGON2ID_13,
        "salt": salt,
        "iterations": 1,
        "memory": 8,
    }
    assert scram_salted_password("caf\u00e9", **args) != scram_salted_password("cafe\u0301", **args)
