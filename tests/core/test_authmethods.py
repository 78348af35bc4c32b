"""Authentication methods (wamp_core._authmethods): ticket, WAMP-CRA, cryptosign, tls.

Client helpers against independent computations and the spec's vectors
(AP/authentication_cryptosign.md), each router-side method on its own, the
``PrincipalAuthenticator`` (method choice, decoys, lookup, single use), and
whole handshakes through the core ``Router`` and ``ClientSession``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

import pytest

from tests.core.pair import Net, Peer
from wamp_core import (
    Accept,
    AuthChallenge,
    ChallengeReceived,
    Deny,
    ErrorURI,
    HelloInfo,
    Router,
    SessionAborted,
    SessionJoined,
)
from wamp_core._authmethods import (
    CHANNEL_BINDING,
    TLS_PEER_CN,
    CraCredential,
    CryptosignKey,
    CryptosignMethod,
    Principal,
    PrincipalAuthenticator,
    TicketMethod,
    TlsMethod,
    WampCraMethod,
    compute_wcs,
    cryptosign_channel_id,
    derive_key,
    wampcra_signature,
)

# Every credential failure, whatever was wrong, looks like this on the wire.
FAILED = Deny(ErrorURI.AUTHENTICATION_FAILED, "authentication failed")

# -- spec material ------------------------------------------------------------------

# AP/authentication_cryptosign.md, "Test Vectors": channel_id, private_key, challenge, signature.
CID = "62e935ae755f3d48f80d4d59f6121358c435722a67e859cc0caa8b539027f2ff"
VECTORS = [
    (
        None,
        "4d57d97a68f555696620a6d849c0ce582568518d729eb753dc7c732de2804510",
        "ff" * 32,
        "b32675b221f08593213737bef8240e7c15228b07028e19595294678c90d11c0cae80a357331bfc5cc9fb"
        "71081464e6e75013517c2cf067ad566a6b7b728e5d03" + "ff" * 32,
    ),
    (
        None,
        "d511fe78e23934b3dadb52fcd022974b80bd92bccc7c5cf404e46cc0a8a2f5cd",
        "b26c1f87c13fc1da14997f1b5a71995dff8fbe0a62fae8473c7bdbd05bfb607d",
        "d4209ad10d5aff6bfbc009d7e924795de138a63515efc7afc6b01b7fe5201372190374886a70207b0422"
        "94af5bd64ce725cd8dceb344e6d11c09d1aaaf4d660f"
        "b26c1f87c13fc1da14997f1b5a71995dff8fbe0a62fae8473c7bdbd05bfb607d",
    ),
    (
        None,
        "6e1fde9cf9e2359a87420b65a87dc0c66136e66945196ba2475990d8a0c3a25b",
        "b05e6b8ad4d69abf74aa3be3c0ee40ae07d66e1895b9ab09285a2f1192d562d2",
        "7beb282184baadd08f166f16dd683b39cab53816ed81e6955def951cb2ddad1ec184e206746fd82bda07"
        "5af03711d3d5658fc84a76196b0fa8d1ebc92ef9f30b"
        "b05e6b8ad4d69abf74aa3be3c0ee40ae07d66e1895b9ab09285a2f1192d562d2",
    ),
    (
        CID,
        "4d57d97a68f555696620a6d849c0ce582568518d729eb753dc7c732de2804510",
        "ff" * 32,
        "9b6f41540c9b95b4b7b281c3042fa9c54cef43c842d62ea3fd6030fcb66e70b3e80d49d44c29d1635da9"
        "348d02ec93f3ed1ef227dfb59a07b580095c2b82f80f"
        "9d16ca518aa0c2b707f2b2a609edeca73bca8dd59817a633f35574ac6fd80d00",
    ),
    (
        CID,
        "d511fe78e23934b3dadb52fcd022974b80bd92bccc7c5cf404e46cc0a8a2f5cd",
        "b26c1f87c13fc1da14997f1b5a71995dff8fbe0a62fae8473c7bdbd05bfb607d",
        "305aaa3ac25e98f651427688b3fc43fe7d8a68a7ec1d7d61c61517c519bd4a427c3015599d83ca28b4c6"
        "52333920223844ef0725eb5dc2febfd6af7677b73f01"
        "d0852a29b460fc92ec943242ac638a053bbacc200512b18b30d15083cbdc9282",
    ),
    (
        CID,
        "6e1fde9cf9e2359a87420b65a87dc0c66136e66945196ba2475990d8a0c3a25b",
        "b05e6b8ad4d69abf74aa3be3c0ee40ae07d66e1895b9ab09285a2f1192d562d2",
        "ee3c7644fd8070532bc1fde3d70d742267da545d8c8f03e63bda63f1ad4214f4d2c4bfdb4eb9526def42"
        "deeb7e31602a6ff99eba893e0a4ad4d45892ca75e608"
        "d2b75e24a189a7f78ca776ba36fc53f6c3e31c32f251f2c524f0a44202f2902d",
    ),
]

# AP/authentication_cryptosign.md, "Example Message Exchanges" 1 (unbound) and 2 (tls-unique).
CLIENT_PUBKEY = "545efb0a2192db8d43f118e9bf9aee081466e1ef36c708b96ee6f62dddad9122"
ROUTER_PUBKEY = "4a3838f6fe75251e613329d53fc69b262d5eac97fb1d73bebbaed4015b53c862"
EX1_HELLO_CHALLENGE = "bbae60ea44cdd7b20dc7010a618b0f0803fab25a817520b4b7f057299b524deb"
EX1_CHALLENGE = "0e9192bc08512c8198da159c1ae600ba91729215f35d56102ee318558e773537"
EX1_ROUTER_SIGNATURE = (
    "fd5128d2d207ba58a9d1d6f41b72c747964ad9d1294077b3b1eee6130b05843ab12c53c7f2519f73d4fe"
    "b82db19d8ca0fc26b62bde6518e79a882f5795bc9f00" + EX1_HELLO_CHALLENGE
)
EX1_AUTHENTICATE = (
    "a3a178fe792ed772a8fc092f8341e455de96670c8901264a7c312dbf940d5743626fe9fbc29b23dcd216"
    "9b308eca309de85a89ccd296b24835de3d95b16b7703" + EX1_CHALLENGE
)
EX2_HELLO_CHALLENGE = "4f861f12796c2972b7b0026522a687aa851d90355122a61d4f1fdce4d06b564f"
EX2_CHALLENGE = "358625312c6c3bf64ed51d17d210ce21af1639c774cabf5735a9651d7d91fc6a"
# The client's transport reports it in the example's "session joined" log line.
EX2_CHANNEL_ID = bytes.fromhex("e973bee24dcea9e20625f949c0e3cd28d632ccbefe4907c2fac2728710f7b160")
EX2_ROUTER_SIGNATURE = (
    "aa05f4cd7747d36b79443f1d4703a681e107edc085d876b508714e2a3a8135bacaae1c018452c4acb3ad"
    "2818aa97a6d23e5ac7e3734c7b1f40e6232a70938205"
    "a6f5a1f034a28090b195fb2ce2454a82532f5c8baf6ba1dfb5ddae63c09ce72f"
)
EX2_AUTHENTICATE = (
    "25114474580d6e99a6126b091b4565c23db567d686c5b8c3a94e3f2f09dc80300c5b40a124236733fa56"
    "396df721eb12ac092362379bd5b27b4db9e2beaa1408"
    "dcf59bd361a2921448f0e45e12f303097924f5798a83b895cf6b179a6d664d0a"
)

# derive_key(secret, salt, iterations, keylen) as autobahn.wamp.auth.derive_key computes it
# (autobahn 26.10.2, computed once).
AUTOBAHN_KEYS = [
    ("secret2", "salt123", 100, 16, "LG5/FwnS5WvgmlEyLPk/pQ=="),
    ("p\u00e4ssword", "s\u00e4lt", 1000, 32, "KfAgvahyDUsb9Lrb1LiuhGeSkQQyosaVD1XJGz6+Ujk="),
]

SEED = "4d57d97a68f555696620a6d849c0ce582568518d729eb753dc7c732de2804510"
ROUTER_SEED = "d511fe78e23934b3dadb52fcd022974b80bd92bccc7c5cf404e46cc0a8a2f5cd"
OTHER_SEED = "6e1fde9cf9e2359a87420b65a87dc0c66136e66945196ba2475990d8a0c3a25b"


def info(
    authmethods: list[str] | None = None,
    authid: str | None = None,
    authextra: dict[str, Any] | None = None,
    *,
    realm: str = "realm1",
    session_id: int = 1234,
    transport: dict[str, Any] | None = None,
) -> HelloInfo:
    details: dict[str, Any] = {"roles": {"caller": {}}}
    if authmethods is not None:
        details["authmethods"] = authmethods
    if authid is not None:
        details["authid"] = authid
    if authextra is not None:
        details["authextra"] = authextra
    return HelloInfo(realm, details, session_id, transport or {})


@dataclass(frozen=True)
class TimedInfo(HelloInfo):
    """HelloInfo carrying the router's clock, as the router is to provide it."""

    now: float | None = None


def fixed(*chunks: bytes) -> Any:
    """A ``random`` that returns ``chunks`` in turn (then zeros)."""
    pending = list(chunks)

    def random(n: int) -> bytes:
        chunk = pending.pop(0) if pending else bytes(n)
        assert len(chunk) == n
        return chunk

    return random


def challenged(outcome: object) -> AuthChallenge:
    assert isinstance(outcome, AuthChallenge), outcome
    return outcome


# -- client side: WAMP-CRA -----------------------------------------------------------


@pytest.mark.parametrize(("secret", "salt", "iterations", "keylen", "expected"), AUTOBAHN_KEYS)
def test_derive_key_matches_autobahn_and_pbkdf2(
    secret: str, salt: str, iterations: int, keylen: int, expected: str
) -> None:
    raw = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt.encode(), iterations, keylen)
    assert derive_key(secret, salt, iterations, keylen) == base64.b64encode(raw).decode()
    assert derive_key(secret, salt, iterations, keylen) == expected
    assert derive_key(secret.encode(), salt.encode(), iterations, keylen) == expected


def test_derive_key_and_compute_wcs_cross_check_with_autobahn() -> None:
    auth = pytest.importorskip("autobahn.wamp.auth")
    for secret, salt, iterations, keylen, _ in AUTOBAHN_KEYS:
        theirs = auth.derive_key(secret, salt, iterations, keylen).decode()
        assert derive_key(secret, salt, iterations, keylen) == theirs
        challenge = '{"authid": "peter", "nonce": "abc"}'
        assert compute_wcs(theirs, challenge) == auth.compute_wcs(theirs, challenge).decode()


def test_compute_wcs_is_base64_hmac_sha256() -> None:
    digest = hmac.new(b"key", b"challenge", hashlib.sha256).digest()
    assert compute_wcs("key", "challenge") == base64.b64encode(digest).decode()
    assert compute_wcs(b"key", b"challenge") == compute_wcs("key", "challenge")


def test_wampcra_signature_plain_and_salted() -> None:
    assert wampcra_signature("pw", {"challenge": "c"}) == compute_wcs("pw", "c")
    salted = {"challenge": "c", "salt": "salt123", "iterations": 100, "keylen": 16}
    assert wampcra_signature("secret2", salted) == compute_wcs("LG5/FwnS5WvgmlEyLPk/pQ==", "c")
    defaults = {"challenge": "c", "salt": "s"}
    assert wampcra_signature("pw", defaults) == compute_wcs(derive_key("pw", "s", 1000, 32), "c")


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"challenge": 1},
        {"challenge": "c", "salt": 5},
        {"challenge": "c", "salt": "s", "iterations": True},
        {"challenge": "c", "salt": "s", "iterations": 0},
        {"challenge": "c", "salt": "s", "iterations": 10**9},
        {"challenge": "c", "salt": "s", "keylen": 0},
        {"challenge": "c", "salt": "s", "keylen": "32"},
        {"challenge": "c", "salt": "s", "keylen": 4096},
    ],
)
def test_wampcra_signature_refuses_bad_challenges(extra: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        wampcra_signature("pw", extra)


# -- client side: cryptosign ----------------------------------------------------------


@pytest.mark.parametrize(("channel_id", "seed", "challenge", "signature"), VECTORS)
def test_cryptosign_spec_vectors(
    channel_id: str | None, seed: str, challenge: str, signature: str
) -> None:
    key = CryptosignKey(seed)
    cid = bytes.fromhex(channel_id) if channel_id else None
    assert key.sign_challenge(challenge, cid) == signature
    assert CryptosignKey(bytes.fromhex(seed)).sign_challenge(challenge, cid) == signature
    # The router checks the same vectors. They give the channel ID itself, which is what
    # tls-exporter data is (tls-unique data is hashed first).
    method = CryptosignMethod(random=fixed(bytes.fromhex(challenge)))
    transport = {CHANNEL_BINDING: {"tls-exporter": cid}} if cid else {}
    extra = {"pubkey": key.public_key_hex, "channel_binding": "tls-exporter" if cid else None}
    hello = info(["cryptosign"], None, extra, transport=transport)
    principal = Principal("user", "alice", cryptosign=[key.public_key_hex])
    sent = challenged(method.challenge(hello, principal))
    assert sent.extra == {"challenge": challenge, "channel_binding": extra["channel_binding"]}
    assert method.verify(hello, principal, sent, signature, {}) == Accept(
        "alice", "user", "cryptosign"
    )


def test_cryptosign_key_public_key_and_generate() -> None:
    key = CryptosignKey(SEED.upper())
    assert key.public_key_hex == "1adfc8bfe1d35616e64dffbd900096f23b066f914c8c2ffbb66f6075b96e116d"
    assert key.public_key == bytes.fromhex(key.public_key_hex)
    generated = CryptosignKey.generate(fixed(bytes.fromhex(SEED)))
    assert generated.public_key == key.public_key
    assert len(CryptosignKey.generate().public_key) == 32


@pytest.mark.parametrize("seed", ["ab" * 31, "zz" * 32, b"\x00" * 31, b"\x00" * 33])
def test_cryptosign_key_refuses_bad_seeds(seed: str | bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        CryptosignKey(seed)


def test_sign_challenge_refuses_bad_input() -> None:
    key = CryptosignKey(SEED)
    with pytest.raises(ValueError, match="64 hex"):
        key.sign_challenge("ff" * 31)
    with pytest.raises(ValueError, match="64 hex"):
        key.sign_challenge("f f" + "f" * 61)  # bytes.fromhex would skip the space
    with pytest.raises(ValueError, match="32 bytes"):
        key.sign_challenge("ff" * 32, b"\x00" * 31)


def test_hello_authextra() -> None:
    key = CryptosignKey(SEED)
    assert key.hello_authextra() == {"pubkey": key.public_key_hex}
    assert key.hello_authextra(channel_binding="tls-unique", challenge="ab" * 32) == {
        "pubkey": key.public_key_hex,
        "channel_binding": "tls-unique",
        "challenge": "ab" * 32,
    }


def test_verify_router_spec_examples() -> None:
    extra1 = {"pubkey": ROUTER_PUBKEY, "signature": EX1_ROUTER_SIGNATURE}
    assert CryptosignKey.verify_router(extra1, EX1_HELLO_CHALLENGE, [ROUTER_PUBKEY])
    assert CryptosignKey.verify_router(extra1, EX1_HELLO_CHALLENGE, ROUTER_PUBKEY.upper())
    extra2 = {"pubkey": ROUTER_PUBKEY, "signature": EX2_ROUTER_SIGNATURE}
    assert CryptosignKey.verify_router(extra2, EX2_HELLO_CHALLENGE, [ROUTER_PUBKEY], EX2_CHANNEL_ID)
    # The bound signature is not valid unbound, nor for another challenge or key.
    assert not CryptosignKey.verify_router(extra2, EX2_HELLO_CHALLENGE, [ROUTER_PUBKEY])
    assert not CryptosignKey.verify_router(extra1, EX2_HELLO_CHALLENGE, [ROUTER_PUBKEY])
    assert not CryptosignKey.verify_router(extra1, EX1_HELLO_CHALLENGE, [CLIENT_PUBKEY])
    assert not CryptosignKey.verify_router(extra1, EX1_HELLO_CHALLENGE, ())


def test_verify_router_refuses_malformed_and_forged() -> None:
    good: dict[str, Any] = {"pubkey": ROUTER_PUBKEY, "signature": EX1_ROUTER_SIGNATURE}
    trusted = [ROUTER_PUBKEY]
    forged = "00" + EX1_ROUTER_SIGNATURE[2:]
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, EX1_HELLO_CHALLENGE),
        ({**good, "pubkey": ROUTER_PUBKEY[:-2]}, EX1_HELLO_CHALLENGE),
        ({**good, "signature": EX1_ROUTER_SIGNATURE[:-2]}, EX1_HELLO_CHALLENGE),
        ({**good, "signature": 7}, EX1_HELLO_CHALLENGE),
        (good, "xx" * 32),
        ({**good, "signature": forged}, EX1_HELLO_CHALLENGE),
    ]
    for extra, challenge in cases:
        assert not CryptosignKey.verify_router(extra, challenge, trusted)


def test_respond_checks_binding_and_router_then_signs() -> None:
    key = CryptosignKey(SEED)
    router = CryptosignKey(ROUTER_SEED)
    mine = "cd" * 32
    cid = bytes(range(32))
    extra = {
        "challenge": "ff" * 32,
        "channel_binding": "tls-unique",
        "pubkey": router.public_key_hex,
        "signature": router.sign_challenge(mine, cid),
    }
    signature = key.respond(
        extra,
        channel_binding="tls-unique",
        channel_id=cid,
        router_challenge=mine,
        trusted_router_keys=[router.public_key_hex],
    )
    assert signature == key.sign_challenge("ff" * 32, cid)
    assert key.respond({"challenge": "ff" * 32, "channel_binding": None}) == key.sign_challenge(
        "ff" * 32
    )
    assert key.respond({"challenge": "ff" * 32}) == key.sign_challenge("ff" * 32)


def test_respond_refuses() -> None:
    key = CryptosignKey(SEED)
    router = CryptosignKey(ROUTER_SEED)
    # The router answered a tls-unique request without binding (AP: the client MUST verify).
    with pytest.raises(ValueError, match="channel binding"):
        key.respond({"challenge": "ff" * 32, "channel_binding": None}, channel_binding="tls-unique")
    with pytest.raises(ValueError, match="channel binding"):
        key.respond({"challenge": "ff" * 32, "channel_binding": "tls-unique"})
    with pytest.raises(ValueError, match="channel ID"):
        key.respond(
            {"challenge": "ff" * 32, "channel_binding": "tls-unique"}, channel_binding="tls-unique"
        )
    signed = {
        "challenge": "ff" * 32,
        "pubkey": router.public_key_hex,
        "signature": router.sign_challenge("cd" * 32),
    }
    with pytest.raises(ValueError, match="router authentication"):
        key.respond(signed, router_challenge="cd" * 32, trusted_router_keys=[CLIENT_PUBKEY])
    with pytest.raises(ValueError, match="router authentication"):
        key.respond({"challenge": "ff" * 32}, router_challenge="cd" * 32)
    with pytest.raises(ValueError, match="must be a string"):
        key.respond({})


# -- principals -----------------------------------------------------------------------


def test_principal_normalises_keys_and_accepts() -> None:
    p = Principal(
        "user", "alice", cryptosign=[CLIENT_PUBKEY.upper()], authextra={"a": 1}, trustlevel=2
    )
    assert p.cryptosign == (CLIENT_PUBKEY,)
    assert p.accept("ticket", {"b": 2}) == Accept(
        "alice", "user", "ticket", "static", {"a": 1, "b": 2}, 2
    )
    assert Principal("r", "x", authprovider="ldap").accept("m").authprovider == "ldap"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"role": ""},
        {"role": 5},
        {"role": "r", "cryptosign": CLIENT_PUBKEY},
        {"role": "r", "cryptosign": ["abc"]},
    ],
)
def test_principal_refuses_bad_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        Principal(**kwargs)


def test_principal_without_authid_cannot_accept() -> None:
    with pytest.raises(ValueError, match="authid"):
        Principal("user").accept("ticket")


def test_cra_credential_salted() -> None:
    c = CraCredential.salted("secret2", "salt123", 100, 16)
    assert c == CraCredential("LG5/FwnS5WvgmlEyLPk/pQ==", "salt123", 100, 16)


# -- router side: ticket --------------------------------------------------------------


def test_ticket_method() -> None:
    method = TicketMethod()
    hello = info(["ticket"], "alice")
    alice = Principal("user", "alice", ticket="s\u00e9cret")
    assert method.accepts(hello)
    assert not method.accepts(info(["ticket"]))
    assert method.applies(hello, alice)
    assert not method.applies(hello, Principal("user", "alice"))
    sent = challenged(method.challenge(hello, alice))
    assert (sent.authmethod, sent.extra) == ("ticket", {})
    assert method.verify(hello, alice, sent, "s\u00e9cret", {}) == Accept("alice", "user", "ticket")
    assert method.verify(hello, alice, sent, "secret", {}) == FAILED
    assert method.verify(hello, alice, sent, "\ud800", {}) == FAILED  # a lone surrogate
    decoy = challenged(method.challenge(hello, None))
    assert (decoy.authmethod, decoy.extra) == ("ticket", {})
    assert method.verify(hello, None, decoy, "s\u00e9cret", {}) == FAILED
    lacking = challenged(method.challenge(hello, Principal("user", "alice")))
    assert method.verify(hello, None, lacking, "", {}) == FAILED


# -- router side: WAMP-CRA ------------------------------------------------------------


def cra(principal: Principal | None, **kwargs: Any) -> tuple[WampCraMethod, AuthChallenge]:
    method = WampCraMethod(**kwargs)
    return method, challenged(method.challenge(info(["wampcra"], "peter"), principal))


def test_cra_challenge_is_a_json_string() -> None:
    peter = Principal("user", "peter", wampcra=CraCredential("pw"), authprovider="userdb")
    _, sent = cra(peter, now=lambda: 1403454985.448, random=fixed(b"k" * 32, b"n" * 24))
    assert sent.authmethod == "wampcra"
    assert list(sent.extra) == ["challenge"]
    assert json.loads(sent.extra["challenge"]) == {
        "authid": "peter",
        "authrole": "user",
        "authmethod": "wampcra",
        "authprovider": "userdb",
        "nonce": base64.b64encode(b"n" * 24).decode(),
        "timestamp": "2014-06-22T16:36:25.448Z",
        "session": 1234,
    }


def test_cra_nonces_differ() -> None:
    peter = Principal("user", "peter", wampcra=CraCredential("pw"))
    nonces = {json.loads(cra(peter)[1].extra["challenge"])["nonce"] for _ in range(5)}
    assert len(nonces) == 5


def test_cra_plain_right_and_wrong() -> None:
    peter = Principal("user", "peter", wampcra=CraCredential("pw"))
    method, sent = cra(peter)
    hello = info(["wampcra"], "peter")
    assert method.applies(hello, peter)
    assert not method.applies(hello, Principal("user"))
    assert method.accepts(hello)
    assert not method.accepts(info(["wampcra"]))
    good = wampcra_signature("pw", sent.extra)
    assert method.verify(hello, peter, sent, good, {}) == Accept("peter", "user", "wampcra")
    _, again = cra(peter)
    assert method.verify(hello, peter, again, wampcra_signature("pW", again.extra), {}) == FAILED


def test_cra_salted() -> None:
    peter = Principal("user", "peter", wampcra=CraCredential.salted("secret2", "salt123", 100, 16))
    method, sent = cra(peter)
    assert (sent.extra["salt"], sent.extra["iterations"], sent.extra["keylen"]) == (
        "salt123",
        100,
        16,
    )
    hello = info(["wampcra"], "peter")
    # The client signs with the derived key, never the password itself.
    assert method.verify(
        hello, peter, sent, compute_wcs("secret2", sent.extra["challenge"]), {}
    ) == (FAILED)
    _, again = cra(peter)
    right = wampcra_signature("secret2", again.extra)
    assert method.verify(hello, peter, again, right, {}) == Accept("peter", "user", "wampcra")


def test_cra_autobahn_client_signs_our_challenges() -> None:
    auth = pytest.importorskip("autobahn.wamp.auth")
    types = pytest.importorskip("autobahn.wamp.types")
    hello = info(["wampcra"], "peter")
    for credential in (CraCredential("pw"), CraCredential.salted("pw", "pepper", 10, 16)):
        peter = Principal("user", "peter", wampcra=credential)
        method, sent = cra(peter)
        client = auth.AuthWampCra(authid="peter", secret="pw")
        signature = client.on_challenge(None, types.Challenge("wampcra", sent.extra))
        assert method.verify(hello, peter, sent, signature, {}) == Accept(
            "peter", "user", "wampcra"
        )


def test_cra_challenge_is_single_use() -> None:
    peter = Principal("user", "peter", wampcra=CraCredential("pw"))
    method, sent = cra(peter)
    hello = info(["wampcra"], "peter")
    good = wampcra_signature("pw", sent.extra)
    assert method.verify(hello, peter, sent, good, {}) == Accept("peter", "user", "wampcra")
    assert method.verify(hello, peter, sent, good, {}) == FAILED  # replay
    assert method.verify(hello, peter, AuthChallenge("wampcra", {}, "x"), good, {}) == FAILED


def test_cra_timestamp_too_old() -> None:
    clock = [1000.0]
    peter = Principal("user", "peter", wampcra=CraCredential("pw"))
    hello = info(["wampcra"], "peter")
    method = WampCraMethod(max_age=10, now=lambda: clock[0])
    sent = challenged(method.challenge(hello, peter))
    clock[0] = 1010.0
    good = wampcra_signature("pw", sent.extra)
    assert method.verify(hello, peter, sent, good, {}) == Accept("peter", "user", "wampcra")
    sent = challenged(method.challenge(hello, peter))
    clock[0] = 1020.5
    expired = method.verify(hello, peter, sent, wampcra_signature("pw", sent.extra), {})
    assert isinstance(expired, Deny)
    assert (expired.reason, expired.message) == (
        ErrorURI.AUTHENTICATION_FAILED,
        "the challenge has expired",
    )


def test_cra_without_max_age_or_clock() -> None:
    peter = Principal("user", "peter", wampcra=CraCredential("pw"))
    hello = info(["wampcra"], "peter")
    clock = [0.0]
    method = WampCraMethod(max_age=None, now=lambda: clock[0])
    sent = challenged(method.challenge(hello, peter))
    clock[0] = 1e9
    good = wampcra_signature("pw", sent.extra)
    assert method.verify(hello, peter, sent, good, {}) == Accept("peter", "user", "wampcra")
    # No clock at all: the epoch in the challenge, and no age check.
    method = WampCraMethod()
    sent = challenged(method.challenge(hello, peter))
    assert json.loads(sent.extra["challenge"])["timestamp"] == "1970-01-01T00:00:00.000Z"
    assert method.verify(hello, peter, sent, wampcra_signature("pw", sent.extra), {}) == Accept(
        "peter", "user", "wampcra"
    )


def test_cra_uses_the_routers_clock_from_hello_info() -> None:
    peter = Principal("user", "peter", wampcra=CraCredential("pw"))
    details = {"authmethods": ["wampcra"], "authid": "peter"}
    method = WampCraMethod(max_age=5)
    sent = challenged(method.challenge(TimedInfo("realm1", details, 1, {}, 100.0), peter))
    assert json.loads(sent.extra["challenge"])["timestamp"] == "1970-01-01T00:01:40.000Z"
    late = TimedInfo("realm1", details, 1, {}, 106.0)
    assert method.verify(late, peter, sent, wampcra_signature("pw", sent.extra), {}) == Deny(
        ErrorURI.AUTHENTICATION_FAILED, "the challenge has expired"
    )


def test_cra_decoys_look_like_challenges_and_fail() -> None:
    method = WampCraMethod(decoy_role="member", decoy_provider="dynamic")
    hello = info(["wampcra"], "nobody")
    sent = challenged(method.challenge(hello, None))
    body = json.loads(sent.extra["challenge"])
    assert (body["authid"], body["authrole"], body["authprovider"]) == (
        "nobody",
        "member",
        "dynamic",
    )
    assert list(sent.extra) == ["challenge"]
    assert method.verify(hello, None, sent, wampcra_signature("", sent.extra), {}) == FAILED
    # A principal without a WAMP-CRA secret gets a decoy too.
    sent = challenged(method.challenge(hello, Principal("user", "nobody")))
    assert json.loads(sent.extra["challenge"])["authrole"] == "member"


def test_cra_salted_decoys_keep_their_salt_per_authid() -> None:
    method = WampCraMethod(decoy_salt=(100, 16))
    first = challenged(method.challenge(info(["wampcra"], "nobody"), None)).extra
    again = challenged(method.challenge(info(["wampcra"], "nobody"), None)).extra
    other = challenged(method.challenge(info(["wampcra"], "someone"), None)).extra
    assert (first["iterations"], first["keylen"]) == (100, 16)
    assert first["salt"] == again["salt"] != other["salt"]
    # Another router instance, another salt: nothing ties decoys to a fixed key.
    fresh = WampCraMethod(decoy_salt=(100, 16))
    assert (
        challenged(fresh.challenge(info(["wampcra"], "nobody"), None)).extra["salt"]
        != (first["salt"])
    )


# -- router side: cryptosign ----------------------------------------------------------


def cs_info(pubkey: str = CLIENT_PUBKEY, authid: str | None = None, **extra: Any) -> HelloInfo:
    transport = extra.pop("transport", None)
    return info(["cryptosign"], authid, {"pubkey": pubkey, **extra}, transport=transport)


def test_cryptosign_spec_example_1_router_side() -> None:
    device = Principal("device", "client01@example.com", cryptosign=[CLIENT_PUBKEY])
    method = CryptosignMethod(random=fixed(bytes.fromhex(EX1_CHALLENGE)))
    hello = cs_info(challenge=EX1_HELLO_CHALLENGE, channel_binding=None)
    assert method.accepts(hello)
    assert method.applies(hello, device)
    sent = challenged(method.challenge(hello, device))
    # Without a router key, no router signature.
    assert sent.extra == {"challenge": EX1_CHALLENGE, "channel_binding": None}
    assert method.verify(hello, device, sent, EX1_AUTHENTICATE, {}) == Accept(
        "client01@example.com", "device", "cryptosign"
    )


def test_cryptosign_spec_example_2_channel_binding() -> None:
    # The example is bound with tls-unique and shows the channel ID (already hashed), not
    # the TLS Finished message: it comes in as tls-exporter data, which is used as is.
    device = Principal("device", "client01@example.com", cryptosign=[CLIENT_PUBKEY])
    transport = {CHANNEL_BINDING: {"tls-exporter": EX2_CHANNEL_ID}}
    hello = cs_info(
        challenge=EX2_HELLO_CHALLENGE, channel_binding="tls-exporter", transport=transport
    )
    method = CryptosignMethod(random=fixed(bytes.fromhex(EX2_CHALLENGE)))
    sent = challenged(method.challenge(hello, device))
    assert sent.extra == {"challenge": EX2_CHALLENGE, "channel_binding": "tls-exporter"}
    assert method.verify(hello, device, sent, EX2_AUTHENTICATE, {}) == Accept(
        "client01@example.com", "device", "cryptosign"
    )
    # The same exchange without the binding: the signed message is not the one expected.
    method = CryptosignMethod(random=fixed(bytes.fromhex(EX2_CHALLENGE)))
    sent = challenged(method.challenge(cs_info(channel_binding="tls-exporter"), device))
    assert sent.extra["channel_binding"] is None
    assert method.verify(hello, device, sent, EX2_AUTHENTICATE, {}) == FAILED


@pytest.mark.parametrize(
    ("binding", "ids"),
    [
        ("tls-exporter", {"tls-unique": EX2_CHANNEL_ID}),
        ("tls-exporter", {"tls-exporter": EX2_CHANNEL_ID[:31]}),
        ("tls-unique", {"tls-unique": b""}),
        ("tls-unique", {"tls-unique": EX2_CHANNEL_ID.hex()}),
        ("tls-unique", "not a dict"),
        ("tls-server-end-point", {"tls-server-end-point": EX2_CHANNEL_ID}),
        (["tls-unique"], {"tls-unique": EX2_CHANNEL_ID}),
    ],
)
def test_cryptosign_unsupported_binding_is_answered_with_null(binding: Any, ids: Any) -> None:
    key = CryptosignKey(SEED)
    p = Principal("user", "alice", cryptosign=[key.public_key_hex])
    hello = cs_info(key.public_key_hex, channel_binding=binding, transport={CHANNEL_BINDING: ids})
    method = CryptosignMethod()
    sent = challenged(method.challenge(hello, p))
    assert sent.extra["channel_binding"] is None
    assert method.verify(hello, p, sent, key.respond(sent.extra), {}) == Accept(
        "alice", "user", "cryptosign"
    )


def test_cryptosign_tls_exporter_binding() -> None:
    key = CryptosignKey(SEED)
    cid = bytes(range(32))
    p = Principal("user", "alice", cryptosign=[key.public_key_hex])
    transport = {CHANNEL_BINDING: {"tls-exporter": cid}}
    hello = cs_info(key.public_key_hex, channel_binding="tls-exporter", transport=transport)
    method = CryptosignMethod()
    sent = challenged(method.challenge(hello, p))
    assert sent.extra["channel_binding"] == "tls-exporter"
    signature = key.respond(sent.extra, channel_binding="tls-exporter", channel_id=cid)
    assert method.verify(hello, p, sent, signature, {}) == Accept("alice", "user", "cryptosign")


def test_cryptosign_tls_unique_is_hashed() -> None:
    finished = b"finished-msg"  # tls-unique binding data: a TLS Finished message
    assert cryptosign_channel_id("tls-unique", finished) == hashlib.sha256(finished).digest()
    assert cryptosign_channel_id("tls-exporter", bytes(32)) == bytes(32)
    assert cryptosign_channel_id("tls-exporter", bytes(12)) is None
    assert cryptosign_channel_id("tls-unique", b"") is None
    assert cryptosign_channel_id("tls-server-end-point", bytes(32)) is None
    key = CryptosignKey(SEED)
    p = Principal("user", "alice", cryptosign=[key.public_key_hex])
    transport = {CHANNEL_BINDING: {"tls-unique": finished, "tls-exporter": bytes(32)}}
    hello = cs_info(key.public_key_hex, channel_binding="tls-unique", transport=transport)
    method = CryptosignMethod()
    sent = challenged(method.challenge(hello, p))
    assert sent.extra["channel_binding"] == "tls-unique"
    cid = cryptosign_channel_id("tls-unique", finished)
    signature = key.respond(sent.extra, channel_binding="tls-unique", channel_id=cid)
    assert method.verify(hello, p, sent, signature, {}) == Accept("alice", "user", "cryptosign")
    unhashed = key.respond(sent.extra, channel_binding="tls-unique", channel_id=bytes(32))
    assert method.verify(hello, p, sent, unhashed, {}) == FAILED


def test_cryptosign_router_authentication() -> None:
    key, router = CryptosignKey(SEED), CryptosignKey(ROUTER_SEED)
    finished = b"finished-msg"
    cid = hashlib.sha256(finished).digest()
    p = Principal("user", "alice", cryptosign=[key.public_key_hex])
    method = CryptosignMethod(router)
    mine = "ab" * 32
    for channel_id in (None, cid):
        transport = {CHANNEL_BINDING: {"tls-unique": finished}} if channel_id else {}
        binding = "tls-unique" if channel_id else None
        hello = cs_info(
            key.public_key_hex, challenge=mine, channel_binding=binding, transport=transport
        )
        sent = challenged(method.challenge(hello, p))
        assert sent.extra["pubkey"] == router.public_key_hex
        assert sent.extra["signature"] == router.sign_challenge(mine, channel_id)
        assert CryptosignKey.verify_router(sent.extra, mine, [router.public_key_hex], channel_id)
        signature = key.respond(
            sent.extra,
            channel_binding=binding,
            channel_id=channel_id,
            router_challenge=mine,
            trusted_router_keys=[router.public_key_hex],
        )
        assert method.verify(hello, p, sent, signature, {}) == Accept("alice", "user", "cryptosign")


@pytest.mark.parametrize(
    "authextra",
    [
        None,
        {},
        {"pubkey": CLIENT_PUBKEY[:-1]},
        {"pubkey": "zz" * 32},
        {"pubkey": CLIENT_PUBKEY, "challenge": "ab"},
        {"pubkey": CLIENT_PUBKEY, "challenge": 5},
    ],
)
def test_cryptosign_needs_a_pubkey(authextra: dict[str, Any] | None) -> None:
    hello = info(["cryptosign"], None, authextra)
    if authextra is None:
        hello.details["authextra"] = "not a dict"
    assert not CryptosignMethod().accepts(hello)


def test_cryptosign_wrong_signatures() -> None:
    key, other = CryptosignKey(SEED), CryptosignKey(OTHER_SEED)
    p = Principal("user", "alice", cryptosign=[key.public_key_hex])
    hello = cs_info(key.public_key_hex)
    method = CryptosignMethod()
    assert not method.applies(hello, Principal("user", "alice", cryptosign=[other.public_key_hex]))
    sent = challenged(method.challenge(hello, p))
    right = key.respond(sent.extra)
    for wrong in [
        other.respond(sent.extra),  # another key
        key.sign_challenge("00" * 32),  # a valid signature of another message
        right[:-2],
        right[:-2] + "zz",
        right.upper()[:-1] + "g",
        "",
    ]:
        assert method.verify(hello, p, sent, wrong, {}) == FAILED
    forged = ("00" if right[:2] != "00" else "11") + right[2:]
    assert method.verify(hello, p, sent, forged, {}) == FAILED
    assert method.verify(hello, p, AuthChallenge("cryptosign", {}, None), right, {}) == FAILED
    # A decoy fails even with a valid signature by the HELLO's key.
    assert method.verify(hello, None, sent, right, {}) == FAILED
    assert method.verify(hello, p, sent, right.upper(), {}) == Accept("alice", "user", "cryptosign")


def test_cryptosign_authid_defaults_to_the_pubkey() -> None:
    key = CryptosignKey(SEED)
    p = Principal("device", cryptosign=[key.public_key_hex])
    hello = cs_info(key.public_key_hex.upper())
    method = CryptosignMethod()
    sent = challenged(method.challenge(hello, p))
    assert method.verify(hello, p, sent, key.respond(sent.extra), {}) == Accept(
        key.public_key_hex, "device", "cryptosign"
    )


# -- the authenticator ----------------------------------------------------------------

ALICE_KEY = CryptosignKey(SEED)
BOB_KEY = CryptosignKey(OTHER_SEED)
ROUTER_KEY = CryptosignKey(ROUTER_SEED)


def principals() -> dict[str, dict[str, Principal]]:
    return {
        "realm1": {
            "alice": Principal(
                "user",
                ticket="t-alice",
                wampcra=CraCredential("cra-alice"),
                cryptosign=[ALICE_KEY.public_key_hex],
            ),
            "bob": Principal("admin", ticket="t-bob", cryptosign=[BOB_KEY.public_key_hex]),
            "carol": Principal("user", wampcra=CraCredential.salted("cra-carol", "pepper", 10)),
        },
        "realm2": {"alice": Principal("guest", ticket="t-alice-2")},
    }


@pytest.fixture
def auth() -> PrincipalAuthenticator:
    return PrincipalAuthenticator(principals(), anonymous={"open": "visitor"})


def test_method_selection_follows_the_hello_order(auth: PrincipalAuthenticator) -> None:
    first = challenged(auth.hello(info(["wampcra", "ticket"], "alice")))
    assert first.authmethod == "wampcra"
    assert challenged(auth.hello(info(["ticket", "wampcra"], "alice"))).authmethod == "ticket"
    # bob has no WAMP-CRA secret: skipped; unknown names are skipped too.
    assert challenged(auth.hello(info(["x-foo", "wampcra", "ticket"], "bob"))).authmethod == (
        "ticket"
    )


def test_no_matching_auth_method(auth: PrincipalAuthenticator) -> None:
    no_method = Deny(
        ErrorURI.NO_MATCHING_AUTH_METHOD,
        "none of the offered authentication methods is available",
    )
    assert auth.hello(info(["x-foo"], "alice")) == no_method
    assert auth.hello(info(["ticket", "wampcra"])) == no_method  # no authid
    assert auth.hello(info(["anonymous"], "alice")) == no_method  # not in realm1
    assert auth.hello(info()) == no_method  # no authmethods: anonymous
    assert auth.hello(info(["cryptosign"], None, {})) == no_method


def test_anonymous(auth: PrincipalAuthenticator) -> None:
    expected = Accept("anonymous-1234", "visitor", "anonymous", "static")
    assert auth.hello(info(["anonymous"], "admin", realm="open")) == expected
    assert auth.hello(info(realm="open")) == expected
    assert auth.hello(info(["ticket", "anonymous"], "nobody", realm="open")) == expected


def round_trip(
    auth: PrincipalAuthenticator, hello: HelloInfo, answer: Any
) -> tuple[AuthChallenge, Any]:
    sent = challenged(auth.hello(hello))
    return sent, auth.authenticate(hello, sent, answer(sent), {})


def test_ticket_through_the_authenticator(auth: PrincipalAuthenticator) -> None:
    hello = info(["ticket"], "alice")
    _, outcome = round_trip(auth, hello, lambda _: "t-alice")
    assert outcome == Accept("alice", "user", "ticket", "static")
    _, outcome = round_trip(auth, info(["ticket"], "alice", realm="realm2"), lambda _: "t-alice")
    assert outcome == FAILED
    _, outcome = round_trip(auth, hello, lambda _: "t-bob")
    assert outcome == FAILED


def test_unknown_authid_looks_like_a_wrong_credential(auth: PrincipalAuthenticator) -> None:
    for authid in ("nobody", "carol"):  # unknown; known without a ticket
        sent, outcome = round_trip(auth, info(["ticket"], authid), lambda _: "t-alice")
        assert (sent.authmethod, sent.extra) == ("ticket", {})
        assert outcome == FAILED
    _, wrong = round_trip(auth, info(["ticket"], "alice"), lambda _: "nope")
    assert wrong == FAILED
    sent, outcome = round_trip(
        auth, info(["wampcra"], "nobody"), lambda s: wampcra_signature("x", s.extra)
    )
    assert set(json.loads(sent.extra["challenge"])) == {
        "authid",
        "authrole",
        "authmethod",
        "authprovider",
        "nonce",
        "timestamp",
        "session",
    }
    assert outcome == FAILED
    # With nothing usable, the decoy is for the first supported method offered.
    assert challenged(auth.hello(info(["x-foo", "wampcra", "ticket"], "nobody"))).authmethod == (
        "wampcra"
    )


def test_wampcra_through_the_authenticator(auth: PrincipalAuthenticator) -> None:
    _, outcome = round_trip(
        auth, info(["wampcra"], "alice"), lambda s: wampcra_signature("cra-alice", s.extra)
    )
    assert outcome == Accept("alice", "user", "wampcra", "static")
    sent, outcome = round_trip(
        auth, info(["wampcra"], "carol"), lambda s: wampcra_signature("cra-carol", s.extra)
    )
    assert (sent.extra["salt"], sent.extra["iterations"]) == ("pepper", 10)
    assert outcome == Accept("carol", "user", "wampcra", "static")


def test_cryptosign_finds_the_principal_by_key(auth: PrincipalAuthenticator) -> None:
    hello = info(["cryptosign"], None, BOB_KEY.hello_authextra())
    _, outcome = round_trip(auth, hello, lambda s: BOB_KEY.respond(s.extra))
    assert outcome == Accept("bob", "admin", "cryptosign", "static")
    hello = info(["cryptosign"], "alice", ALICE_KEY.hello_authextra())
    _, outcome = round_trip(auth, hello, lambda s: ALICE_KEY.respond(s.extra))
    assert outcome == Accept("alice", "user", "cryptosign", "static")
    # alice's authid with bob's key, and an unknown key: decoys that fail.
    for hello in [
        info(["cryptosign"], "alice", BOB_KEY.hello_authextra()),
        info(["cryptosign"], None, ROUTER_KEY.hello_authextra()),
    ]:
        key = BOB_KEY if hello.authid else ROUTER_KEY
        sent, outcome = round_trip(auth, hello, lambda s, key=key: key.respond(s.extra))
        assert set(sent.extra) == {"challenge", "channel_binding"}
        assert outcome == FAILED


def test_two_principals_with_one_key_are_refused() -> None:
    key = ALICE_KEY.public_key_hex
    with pytest.raises(ValueError, match="two principals"):
        PrincipalAuthenticator(
            {"r": {"a": Principal("x", cryptosign=[key]), "b": Principal("x", cryptosign=[key])}}
        )
    PrincipalAuthenticator({"r": {"a": Principal("x", cryptosign=[key, key.upper()])}})


def test_challenges_are_single_use(auth: PrincipalAuthenticator) -> None:
    hello = info(["ticket"], "alice")
    sent = challenged(auth.hello(hello))
    assert auth.authenticate(hello, sent, "t-alice", {}) == Accept("alice", "user", "ticket")
    assert auth.authenticate(hello, sent, "t-alice", {}) == FAILED
    assert auth.authenticate(hello, AuthChallenge("ticket", {}, None), "t-alice", {}) == FAILED


def test_dynamic_lookup() -> None:
    asked: list[tuple[str | None, str]] = []

    def lookup(hello: HelloInfo, method: str) -> Principal | None:
        asked.append((hello.authid, method))
        if hello.authid == "dave":
            return Principal("member", ticket="t-dave", authextra={"tier": 1})
        if method == "cryptosign":
            return Principal("device", authid="dev-7", cryptosign=[BOB_KEY.public_key_hex])
        if hello.authid == "erin":
            return Principal("member", ticket="t-erin", authprovider="ldap")
        return None

    auth = PrincipalAuthenticator(principals(), lookup=lookup)
    _, outcome = round_trip(auth, info(["ticket"], "dave"), lambda _: "t-dave")
    assert outcome == Accept("dave", "member", "ticket", "dynamic", {"tier": 1})
    _, outcome = round_trip(auth, info(["ticket"], "erin"), lambda _: "t-erin")
    assert outcome == Accept("erin", "member", "ticket", "ldap")
    hello = info(["cryptosign"], None, BOB_KEY.hello_authextra(), realm="realm9")
    _, outcome = round_trip(auth, hello, lambda s: BOB_KEY.respond(s.extra))
    assert outcome == Accept("dev-7", "device", "cryptosign", "dynamic")
    # The static table wins; the lookup is only asked for what it lacks.
    asked.clear()
    _, outcome = round_trip(auth, info(["ticket"], "alice"), lambda _: "t-alice")
    assert outcome == Accept("alice", "user", "ticket", "static")
    assert asked == []
    _, outcome = round_trip(auth, info(["ticket"], "zed"), lambda _: "")
    assert (outcome, asked) == (FAILED, [("zed", "ticket")])


def test_lookup_failures_deny() -> None:
    broken = Deny(ErrorURI.AUTHENTICATION_FAILED, "the authenticator failed")

    def raising(hello: HelloInfo, method: str) -> Principal | None:
        raise RuntimeError("database down")

    assert PrincipalAuthenticator(lookup=raising).hello(info(["ticket"], "x")) == broken
    wrong_type: Any = lambda hello, method: "user"  # noqa: E731
    assert PrincipalAuthenticator(lookup=wrong_type).hello(info(["ticket"], "x")) == broken


class Plugin:
    """A method following the AuthMethod interface, with scripted answers."""

    name = "x-plugin"

    def __init__(self, at_hello: str = "challenge", at_verify: str = "accept") -> None:
        self.at_hello = at_hello
        self.at_verify = at_verify

    def accepts(self, info: HelloInfo) -> bool:
        return True

    def applies(self, info: HelloInfo, principal: Principal) -> bool:
        return "x-plugin" in principal.credentials

    def challenge(self, info: HelloInfo, principal: Principal | None) -> Any:
        if self.at_hello == "accept":
            return Accept(info.authid or "?", "plugged", self.name)
        if self.at_hello == "deny":
            return Deny(ErrorURI.AUTHORIZATION_FAILED, "plugin says no")
        return AuthChallenge(self.name, {"plugin": True}, "plugin-state")

    def verify(
        self,
        info: HelloInfo,
        principal: Principal | None,
        challenge: AuthChallenge,
        signature: str,
        extra: dict[str, Any],
    ) -> Accept | Deny:
        assert challenge.state == "plugin-state"
        if self.at_verify == "raise":
            raise RuntimeError("bug")
        if principal is None:
            return Accept("x", "x", self.name)  # a broken plugin: admits a decoy
        return principal.accept(self.name, {"seen": signature})


def plugged(plugin: Plugin) -> PrincipalAuthenticator:
    table = {"realm1": {"pat": Principal("user", credentials={"x-plugin": "cred"})}}
    return PrincipalAuthenticator(table, methods=[plugin])


def test_plugin_method() -> None:
    auth = plugged(Plugin())
    hello = info(["x-plugin"], "pat")
    sent, outcome = round_trip(auth, hello, lambda _: "sig")
    assert (sent.authmethod, sent.extra) == ("x-plugin", {"plugin": True})
    assert outcome == Accept("pat", "user", "x-plugin", "static", {"seen": "sig"})
    refused = auth.hello(info(["ticket"], "pat"))
    assert isinstance(refused, Deny)
    assert refused.reason == ErrorURI.NO_MATCHING_AUTH_METHOD


def test_plugin_decoys_never_get_in() -> None:
    _, outcome = round_trip(plugged(Plugin()), info(["x-plugin"], "nobody"), lambda _: "sig")
    assert outcome == FAILED
    assert plugged(Plugin("accept")).hello(info(["x-plugin"], "nobody")) == FAILED


def test_plugin_immediate_answers_and_failures() -> None:
    assert plugged(Plugin("accept")).hello(info(["x-plugin"], "pat")) == Accept(
        "pat", "plugged", "x-plugin"
    )
    assert plugged(Plugin("deny")).hello(info(["x-plugin"], "pat")) == Deny(
        ErrorURI.AUTHORIZATION_FAILED, "plugin says no"
    )
    _, outcome = round_trip(plugged(Plugin(at_verify="raise")), info(["x-plugin"], "pat"), str)
    assert outcome == Deny(ErrorURI.AUTHENTICATION_FAILED, "the authenticator failed")


# -- tls: client certificates ----------------------------------------------------------

NO_METHOD = Deny(
    ErrorURI.NO_MATCHING_AUTH_METHOD, "none of the offered authentication methods is available"
)


def tls_info(
    cn: object, authmethods: list[str] | None = None, authid: str | None = None, **kw: Any
) -> HelloInfo:
    return info(authmethods or ["tls"], authid, transport={"tls": True, TLS_PEER_CN: cn}, **kw)


def tls_principals() -> dict[str, dict[str, Principal]]:
    table = principals()
    table["realm1"]["dev-1"] = Principal("device", tls=True, authextra={"kind": "sensor"})
    return table


def test_tls_method_on_its_own() -> None:
    method = TlsMethod()
    device = Principal("device", authid="dev-1", tls=True)
    assert method.name == "tls"
    assert method.accepts(tls_info("dev-1"))
    # No (usable) certificate: the method is not available.
    for cn in (None, "", 7):
        assert not method.accepts(tls_info(cn))
    assert not method.accepts(info(["tls"]))
    assert method.applies(tls_info("dev-1"), device)
    assert method.applies(tls_info("dev-1", authid="dev-1"), device)
    assert not method.applies(tls_info("dev-1", authid="dev-2"), device)  # HELLO authid differs
    assert not method.applies(tls_info("dev-2"), device)  # another certificate
    assert not method.applies(tls_info("dev-1"), Principal("device", authid="dev-1"))  # no tls
    assert method.challenge(tls_info("dev-1"), device) == Accept("dev-1", "device", "tls", "static")
    assert method.challenge(tls_info("dev-1"), None) == FAILED
    assert method.challenge(tls_info("dev-1", authid="dev-2"), device) == FAILED
    assert method.verify(tls_info("dev-1"), device, AuthChallenge("tls", {}), "", {}) == FAILED


def test_tls_through_the_authenticator() -> None:
    auth = PrincipalAuthenticator(tls_principals())
    admitted = Accept("dev-1", "device", "tls", "static", {"kind": "sensor"})
    assert auth.hello(tls_info("dev-1")) == admitted
    assert auth.hello(tls_info("dev-1", authid="dev-1")) == admitted
    # A HELLO authid other than the CN, a principal without tls, an unknown CN,
    # another realm: the same failure as a wrong credential, at once.
    assert auth.hello(tls_info("dev-1", authid="alice")) == FAILED
    assert auth.hello(tls_info("alice")) == FAILED
    assert auth.hello(tls_info("alice", authid="alice")) == FAILED
    assert auth.hello(tls_info("nobody")) == FAILED
    assert auth.hello(tls_info("dev-1", realm="realm2")) == FAILED
    # No client certificate: as if the method were not supported.
    assert auth.hello(info(["tls"])) == NO_METHOD
    assert auth.hello(info(["tls"], transport={"tls": True})) == NO_METHOD
    _, outcome = round_trip(auth, info(["tls", "ticket"], "alice"), lambda _: "t-alice")
    assert outcome == Accept("alice", "user", "ticket", "static")


def test_tls_is_never_the_decoy() -> None:
    """An immediate Deny for tls next to a real CHALLENGE would tell which
    authids have a ticket; the decoy is a method that challenges."""
    auth = PrincipalAuthenticator(tls_principals())
    real = challenged(auth.hello(tls_info("nobody", ["tls", "ticket"], "alice")))
    decoy = challenged(auth.hello(tls_info("nobody", ["tls", "ticket"], "zed")))
    assert (real.authmethod, real.extra) == (decoy.authmethod, decoy.extra) == ("ticket", {})
    assert auth.authenticate(info(), decoy, "t-alice", {}) == FAILED


def test_tls_dynamic_lookup() -> None:
    asked: list[tuple[str | None, str]] = []

    def lookup(hello: HelloInfo, method: str) -> Principal | None:
        asked.append((hello.authid, method))
        cn = hello.transport.get(TLS_PEER_CN)
        if cn == "dev-9":
            return Principal("device", tls=True)
        if cn == "dev-8":
            return Principal("device", authid="someone-else", tls=True)
        return None

    auth = PrincipalAuthenticator(tls_principals(), lookup=lookup)
    assert auth.hello(tls_info("dev-9")) == Accept("dev-9", "device", "tls", "dynamic")
    assert auth.hello(tls_info("dev-8")) == FAILED  # the authid must be the CN
    assert auth.hello(tls_info("dev-7")) == FAILED
    assert asked == [(None, "tls")] * 3


# -- whole handshakes through Router and ClientSession --------------------------------


@pytest.fixture
def net(auth: PrincipalAuthenticator) -> Net:
    return Net(Router(["realm1", "realm2", "open"], authenticator=auth))


def challenge_of(net: Net, peer: Peer) -> ChallengeReceived:
    net.pump()
    event = peer.last()
    assert isinstance(event, ChallengeReceived), event
    return event


def answer(net: Net, peer: Peer, signature: str) -> Any:
    peer.client.authenticate(signature)
    net.pump()
    return peer.last()


def assert_joined(event: Any, authid: str, authrole: str, authmethod: str) -> None:
    assert isinstance(event, SessionJoined), event
    details = event.details
    assert (details["authid"], details["authrole"], details["authmethod"]) == (
        authid,
        authrole,
        authmethod,
    )
    assert details["authprovider"] == "static"


def assert_refused(event: Any, reason: str = ErrorURI.AUTHENTICATION_FAILED) -> None:
    assert isinstance(event, SessionAborted), event
    assert event.reason == reason
    if reason == ErrorURI.AUTHENTICATION_FAILED:
        assert event.message == "authentication failed"


@pytest.mark.parametrize("serializer", ["json", "msgpack", "cbor"])
def test_flow_ticket(net: Net, serializer: str) -> None:
    peer = net.peer(serializer)
    peer.client.join("realm1", authmethods=["ticket"], authid="alice")
    event = challenge_of(net, peer)
    assert (event.authmethod, event.extra) == ("ticket", {})
    assert_joined(answer(net, peer, "t-alice"), "alice", "user", "ticket")


def test_flow_failures_do_not_say_what_was_wrong(net: Net) -> None:
    aborts = []
    for authid, ticket in [("alice", "wrong"), ("nobody", "t-alice"), ("carol", "t-alice")]:
        peer = net.peer()
        peer.client.join("realm1", authmethods=["ticket"], authid=authid)
        event = challenge_of(net, peer)
        assert (event.authmethod, event.extra) == ("ticket", {})
        aborted = answer(net, peer, ticket)
        assert_refused(aborted)
        aborts.append((aborted.reason, aborted.details))
    assert aborts[0] == aborts[1] == aborts[2]


def test_flow_no_matching_method(net: Net) -> None:
    peer = net.peer()
    peer.client.join("realm1", authmethods=["ticket"])
    net.pump()
    assert_refused(peer.last(), ErrorURI.NO_MATCHING_AUTH_METHOD)


def test_flow_anonymous(net: Net) -> None:
    peer = net.peer()
    peer.client.join("open", authid="root")
    net.pump()
    event = peer.last()
    assert isinstance(event, SessionJoined)
    assert_joined(event, f"anonymous-{event.session_id}", "visitor", "anonymous")


def test_flow_wampcra_plain_and_salted(net: Net) -> None:
    for authid, secret in [("alice", "cra-alice"), ("carol", "cra-carol")]:
        peer = net.peer()
        peer.client.join("realm1", authmethods=["wampcra"], authid=authid)
        event = challenge_of(net, peer)
        session = json.loads(event.extra["challenge"])["session"]
        joined = answer(net, peer, wampcra_signature(secret, event.extra))
        assert_joined(joined, authid, "user", "wampcra")
        assert joined.session_id == session
    peer = net.peer()
    peer.client.join("realm1", authmethods=["wampcra"], authid="carol")
    event = challenge_of(net, peer)
    assert_refused(answer(net, peer, wampcra_signature("cra-alice", event.extra)))


def test_flow_wampcra_too_late() -> None:
    table = {"realm1": {"alice": Principal("user", wampcra=CraCredential("pw"))}}
    method = WampCraMethod(max_age=30, now=lambda: router.now)
    router = Router(["realm1"], authenticator=PrincipalAuthenticator(table, methods=[method]))
    net = Net(router)
    router.tick(1000.0)
    peer = net.peer()
    peer.client.join("realm1", authmethods=["wampcra"], authid="alice")
    event = challenge_of(net, peer)
    router.tick(1031.0)
    aborted = answer(net, peer, wampcra_signature("pw", event.extra))
    assert isinstance(aborted, SessionAborted)
    assert (aborted.reason, aborted.message) == (
        ErrorURI.AUTHENTICATION_FAILED,
        "the challenge has expired",
    )


def test_flow_cryptosign_with_binding_and_router_authentication() -> None:
    table = {"realm1": {"dev": Principal("device", cryptosign=[ALICE_KEY.public_key_hex])}}
    auth = PrincipalAuthenticator(table, methods=[CryptosignMethod(ROUTER_KEY)])
    net = Net(Router(["realm1"], authenticator=auth))
    finished = bytes(range(12))
    cid = cryptosign_channel_id("tls-unique", finished)
    mine = "5a" * 32
    peer = net.peer("cbor")
    peer.slot.transport[CHANNEL_BINDING] = {"tls-unique": finished}
    peer.client.join(
        "realm1",
        authmethods=["cryptosign"],
        authextra=ALICE_KEY.hello_authextra(channel_binding="tls-unique", challenge=mine),
    )
    event = challenge_of(net, peer)
    assert event.extra["channel_binding"] == "tls-unique"
    signature = ALICE_KEY.respond(
        event.extra,
        channel_binding="tls-unique",
        channel_id=cid,
        router_challenge=mine,
        trusted_router_keys=[ROUTER_KEY.public_key_hex],
    )
    assert_joined(answer(net, peer, signature), "dev", "device", "cryptosign")
    # Another key for the same principal-less HELLO: refused like any wrong credential.
    peer = net.peer()
    peer.client.join("realm1", authmethods=["cryptosign"], authextra=BOB_KEY.hello_authextra())
    event = challenge_of(net, peer)
    assert_refused(answer(net, peer, BOB_KEY.respond(event.extra)))


@pytest.mark.skipif(
    "now" not in HelloInfo.__dataclass_fields__, reason="HelloInfo does not carry now yet"
)
def test_flow_wampcra_uses_the_routers_clock() -> None:
    table = {"realm1": {"alice": Principal("user", wampcra=CraCredential("pw"))}}
    auth = PrincipalAuthenticator(table, methods=[WampCraMethod(max_age=30)])
    router = Router(["realm1"], authenticator=auth)
    net = Net(router)
    for delay, joined in [(30.0, True), (30.5, False)]:
        router.tick(router.now + 1000.0)
        peer = net.peer()
        peer.client.join("realm1", authmethods=["wampcra"], authid="alice")
        event = challenge_of(net, peer)
        stamp = json.loads(event.extra["challenge"])["timestamp"]
        assert stamp != "1970-01-01T00:00:00.000Z"
        router.tick(router.now + delay)
        outcome = answer(net, peer, wampcra_signature("pw", event.extra))
        assert isinstance(outcome, SessionJoined if joined else SessionAborted), outcome
