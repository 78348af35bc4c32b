"""Authentication methods, router and client side (AP/authentication*.md), sans-IO.

Router side: ``PrincipalAuthenticator`` implements ``Authenticator`` over a
table of ``Principal`` objects per realm (and/or a ``lookup`` callable), with a
registry of method objects: ``TicketMethod``, ``WampCraMethod`` (plain and
salted), ``CryptosignMethod`` (Ed25519, TLS channel binding, router
authentication) and ``TlsMethod`` (TLS client certificates). Client side:
``compute_wcs``, ``derive_key``, ``wampcra_signature`` and ``CryptosignKey``.

A method is any object with this interface (SCRAM and others plug in here)::

    class AuthMethod(Protocol):
        name: str                                     # HELLO.Details.authmethods entry
        def accepts(self, info) -> bool               # the HELLO has what the method needs
        def applies(self, info, principal) -> bool    # the principal has credentials for it
        def challenge(self, info, principal | None) -> AuthChallenge | Accept | Deny
        def verify(self, info, principal | None, challenge, signature, extra) -> Accept | Deny

``principal`` is ``None`` for a *decoy*: the authid is unknown or has no
credentials for the method; ``challenge`` must then look like a real one and
``verify`` must deny (the authenticator also refuses any Accept for a decoy), so
that an unknown authid and a wrong credential look the same on the wire.
``verify`` receives the ``AuthChallenge`` the method returned (its ``state``
included). A method that needs no CHALLENGE returns its Accept (or Deny) from
``challenge`` and sets ``challenges = False``: it is then never used as a decoy
(its immediate answer would tell a decoy from a real CHALLENGE), an unknown
principal is denied at once unless another offered method can send a decoy.
Principals are looked up by HELLO.authid; ``cryptosign`` without an authid looks
the principal up by public key, ``tls`` by the certificate's common name. A
plug-in keeps its credentials in ``Principal.credentials[name]`` and admits with
``principal.accept(name, authextra)``.

Time: WAMP-CRA checks the challenge's age. The core reads no clock: the time is
``HelloInfo.now`` when the router provides it, else the ``now`` callable given
to ``WampCraMethod``; with neither, the timestamp is the epoch and the age is
not checked.

Channel binding: the adapter reports the TLS channel binding data (RFC 5929,
RFC 9266) in the transport dictionary, ``transport["channel_binding"] =
{"tls-unique": bytes, "tls-exporter": bytes, ...}`` (the types it can provide;
SCRAM reads the same key). ``cryptosign_channel_id`` turns that data into the
32-byte channel ID cryptosign XORs with its challenge.

Client certificates: the adapter reports the facts of a client certificate
that the TLS handshake verified in the transport dictionary; ``tls`` reads
``transport["tls_peer_cn"]`` (``TLS_PEER_CN``), the subject's common name. The
peer cannot forge it: only the adapter fills the transport dictionary.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Protocol, TypeGuard

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ._auth import Accept, AuthChallenge, AuthOutcome, Deny, HelloInfo
from ._uri import ErrorURI

__all__ = [
    "CHANNEL_BINDING",
    "TLS_PEER_CN",
    "AuthMethod",
    "CraCredential",
    "CryptosignKey",
    "CryptosignMethod",
    "Principal",
    "PrincipalAuthenticator",
    "TicketMethod",
    "TlsMethod",
    "WampCraMethod",
    "compute_wcs",
    "cryptosign_channel_id",
    "derive_key",
    "wampcra_signature",
]

CHANNEL_BINDING = "channel_binding"
"""The transport key holding ``{channel binding type: binding data (bytes)}``."""

TLS_PEER_CN = "tls_peer_cn"
"""The transport key holding the verified client certificate's common name."""

RandomBytes = Callable[[int], bytes]
Lookup = Callable[[HelloInfo, str], "Principal | None"]

# One answer for an unknown principal and for a wrong credential. AP/uris.md
# offers no_such_principal and authentication_denied ("wrong password"); either
# would tell which part was wrong, so both are reported as authentication_failed.
_FAILED = Deny(ErrorURI.AUTHENTICATION_FAILED, "authentication failed")
_EXPIRED = Deny(ErrorURI.AUTHENTICATION_FAILED, "the challenge has expired")
_BROKEN = Deny(ErrorURI.AUTHENTICATION_FAILED, "the authenticator failed")
_NO_METHOD = Deny(
    ErrorURI.NO_MATCHING_AUTH_METHOD, "none of the offered authentication methods is available"
)
_HEX = frozenset("0123456789abcdefABCDEF")


def _utf8(text: str | bytes) -> bytes:
    # surrogatepass: a JSON string may hold a lone surrogate; never raise on it.
    return text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")


def _is_hex(value: object, length: int) -> TypeGuard[str]:
    return isinstance(value, str) and len(value) == length and all(c in _HEX for c in value)


def _xor(data: bytes, channel_id: bytes | None) -> bytes:
    if channel_id is None:
        return data
    if len(channel_id) != len(data):
        raise ValueError("a channel ID is 32 bytes")
    return bytes(a ^ b for a, b in zip(data, channel_id))


def cryptosign_channel_id(binding: str, data: bytes) -> bytes | None:
    """The cryptosign channel ID for channel binding ``data`` of type ``binding``.

    ``tls-unique`` (the TLS Finished message, RFC 5929): its SHA-256, as
    Autobahn computes it (the spec only says "the 32 bytes from TLS");
    ``tls-exporter`` (RFC 9266, 32 bytes): the data itself. None for any other
    type or for data of the wrong size.
    """
    if binding == "tls-unique" and data:
        return hashlib.sha256(data).digest()
    if binding == "tls-exporter" and len(data) == 32:
        return data
    return None


def _authextra(info: HelloInfo) -> dict[str, Any]:
    extra = info.details.get("authextra")
    return extra if isinstance(extra, dict) else {}


def _clock(now: Callable[[], float] | None, info: HelloInfo) -> float | None:
    """The injected ``now()``, else the router's clock (``HelloInfo.now``), else None."""
    return now() if now is not None else info.now


def _expired(issued: float | None, max_age: float | None, now: float | None) -> bool:
    """Whether a challenge issued at ``issued`` is older than ``max_age`` at ``now``;
    when any of them is unknown, it is not."""
    return (
        max_age is not None and issued is not None and now is not None and (now - issued > max_age)
    )


# -- client side: WAMP-CRA ------------------------------------------------------------


def derive_key(
    secret: str | bytes, salt: str | bytes, iterations: int = 1000, keylen: int = 32
) -> str:
    """The salted WAMP-CRA key: base64(PBKDF2-HMAC-SHA256(secret, salt)).

    Strings are taken as UTF-8 (the salt too, not base64-decoded), as Autobahn
    and Crossbar compute it; AP/authentication_cra.md names neither PRF nor
    encoding. The ASCII of the result is the HMAC key.
    """
    key = hashlib.pbkdf2_hmac("sha256", _utf8(secret), _utf8(salt), iterations, keylen)
    return base64.b64encode(key).decode("ascii")


def compute_wcs(key: str | bytes, challenge: str | bytes) -> str:
    """The WAMP-CRA signature: base64(HMAC-SHA256(key, challenge as sent))."""
    digest = hmac.new(_utf8(key), _utf8(challenge), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def wampcra_signature(
    secret: str | bytes, extra: Mapping[str, Any], *, max_iterations: int = 1_000_000
) -> str:
    """The AUTHENTICATE signature for a ``wampcra`` CHALLENGE.Extra.

    Derives the key first when the challenge is salted. Raises ``ValueError``
    for a malformed challenge, or PBKDF2 parameters out of range (a router must
    not make the client spend unbounded work).
    """
    challenge = extra.get("challenge")
    if not isinstance(challenge, str):
        raise ValueError("CHALLENGE.Extra.challenge must be a string")
    key = secret
    if "salt" in extra:
        salt = extra["salt"]
        iterations = extra.get("iterations", 1000)
        keylen = extra.get("keylen", 32)
        if (
            not isinstance(salt, str)
            or type(iterations) is not int
            or type(keylen) is not int
            or not 0 < iterations <= max_iterations
            or not 0 < keylen <= 1024
        ):
            raise ValueError("invalid WAMP-CRA salt parameters")
        key = derive_key(secret, salt, iterations, keylen)
    return compute_wcs(key, challenge)


# -- client side: cryptosign ----------------------------------------------------------


class CryptosignKey:
    """An Ed25519 key for ``cryptosign`` (client key, or the router's own key)."""

    __slots__ = ("_key", "public_key")

    def __init__(self, seed: bytes | str) -> None:
        """``seed`` is the 32-byte private seed, or its 64 hex digits."""
        if isinstance(seed, str):
            if not _is_hex(seed, 64):
                raise ValueError("a hex Ed25519 seed is 64 hex digits")
            seed = bytes.fromhex(seed)
        if len(seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes")
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self.public_key: bytes = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @classmethod
    def generate(cls, random: RandomBytes = secrets.token_bytes) -> CryptosignKey:
        """A new key from 32 random bytes."""
        return cls(random(32))

    @property
    def public_key_hex(self) -> str:
        """The public key as 64 lowercase hex digits (HELLO authextra.pubkey)."""
        return self.public_key.hex()

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``."""
        return self._key.sign(message)

    def sign_challenge(self, challenge_hex: str, channel_id: bytes | None = None) -> str:
        """hex(signature || message), message = challenge, XOR ``channel_id`` if bound.

        Raises ``ValueError`` unless the challenge is 32 bytes in hex (and the
        channel ID 32 bytes).
        """
        if not _is_hex(challenge_hex, 64):
            raise ValueError("a cryptosign challenge is 64 hex digits")
        message = _xor(bytes.fromhex(challenge_hex), channel_id)
        return (self.sign(message) + message).hex()

    def hello_authextra(
        self, *, channel_binding: str | None = None, challenge: str | None = None
    ) -> dict[str, Any]:
        """HELLO.Details.authextra: the public key, the requested binding and,
        for router authentication, the client's challenge (64 hex digits)."""
        extra: dict[str, Any] = {"pubkey": self.public_key_hex}
        if channel_binding is not None:
            extra["channel_binding"] = channel_binding
        if challenge is not None:
            extra["challenge"] = challenge
        return extra

    def respond(
        self,
        extra: Mapping[str, Any],
        *,
        channel_binding: str | None = None,
        channel_id: bytes | None = None,
        router_challenge: str | None = None,
        trusted_router_keys: Iterable[str] = (),
    ) -> str:
        """The AUTHENTICATE signature for a ``cryptosign`` CHALLENGE.Extra.

        Checks first what the client MUST check (AP/authentication_cryptosign.md):
        the binding in use is the one requested in HELLO (``channel_binding``;
        ``channel_id`` is this connection's ID for it, ``cryptosign_channel_id``
        of the client's own binding data) and, when
        ``router_challenge`` was sent, that a trusted router key signed it.
        Raises ``ValueError`` when a check fails.
        """
        if extra.get("channel_binding") != channel_binding:
            raise ValueError("the router did not use the requested channel binding")
        if channel_binding is not None and channel_id is None:
            raise ValueError("channel binding needs the channel ID")
        if router_challenge is not None and not self.verify_router(
            extra, router_challenge, trusted_router_keys, channel_id
        ):
            raise ValueError("router authentication failed")
        challenge = extra.get("challenge")
        if not isinstance(challenge, str):
            raise ValueError("CHALLENGE.Extra.challenge must be a string")
        return self.sign_challenge(challenge, channel_id)

    @staticmethod
    def verify_router(
        extra: Mapping[str, Any],
        challenge_hex: str,
        trusted: Iterable[str],
        channel_id: bytes | None = None,
    ) -> bool:
        """Whether CHALLENGE.Extra carries a valid router signature of the
        client's ``challenge_hex`` (XOR ``channel_id`` when bound) by one of the
        ``trusted`` public keys (hex)."""
        pubkey, signature = extra.get("pubkey"), extra.get("signature")
        if isinstance(trusted, str):
            trusted = (trusted,)
        if (
            not _is_hex(pubkey, 64)
            or not _is_hex(signature, 192)
            or not _is_hex(challenge_hex, 64)
            or pubkey.lower() not in {key.lower() for key in trusted}
        ):
            return False
        raw = bytes.fromhex(signature)
        if not hmac.compare_digest(raw[64:], _xor(bytes.fromhex(challenge_hex), channel_id)):
            return False
        try:
            Ed25519PublicKey.from_public_bytes(bytes.fromhex(pubkey)).verify(raw[:64], raw[64:])
        except InvalidSignature:
            return False
        return True


# -- principals -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CraCredential:
    """A WAMP-CRA secret. With ``salt``, ``secret`` is the key derived from the
    password (``derive_key``), so the router never stores the password; the
    salt parameters go to the client in CHALLENGE."""

    secret: str = field(repr=False)
    salt: str | None = None
    iterations: int = 1000
    keylen: int = 32

    @classmethod
    def salted(
        cls, password: str, salt: str, iterations: int = 1000, keylen: int = 32
    ) -> CraCredential:
        """The salted credential for ``password``."""
        return cls(derive_key(password, salt, iterations, keylen), salt, iterations, keylen)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who may authenticate, as whom, and with which credentials.

    ``cryptosign`` lists public keys (64 hex digits); ``tls`` lets the
    principal log in with a client certificate whose common name is its authid
    (``TlsMethod``); ``credentials`` holds
    plug-in methods' credentials by method name. ``authextra`` and
    ``trustlevel`` go into the Accept. ``authid`` and ``authprovider`` are set
    by the authenticator (the table key, or what a ``lookup`` returns).
    """

    role: str
    authid: str | None = None
    ticket: str | None = field(default=None, repr=False)
    wampcra: CraCredential | None = None
    cryptosign: Collection[str] = ()
    credentials: Mapping[str, Any] = field(default_factory=dict)
    authextra: Mapping[str, Any] = field(default_factory=dict)
    authprovider: str | None = None
    trustlevel: int | None = None
    tls: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.role, str) or not self.role:
            raise ValueError("a principal needs a role")
        if isinstance(self.cryptosign, str) or not all(_is_hex(k, 64) for k in self.cryptosign):
            raise ValueError("cryptosign keys are a collection of 64-hex-digit public keys")
        object.__setattr__(self, "cryptosign", tuple(k.lower() for k in self.cryptosign))

    def accept(self, authmethod: str, authextra: Mapping[str, Any] | None = None) -> Accept:
        """Admit this principal, authenticated by ``authmethod``."""
        if self.authid is None:
            raise ValueError("the principal has no authid")
        return Accept(
            self.authid,
            self.role,
            authmethod,
            self.authprovider or "static",
            {**self.authextra, **(authextra or {})},
            self.trustlevel,
        )


class AuthMethod(Protocol):
    """One authentication method (see the module docstring)."""

    name: str

    def accepts(self, info: HelloInfo) -> bool:
        """Whether the HELLO carries what the method needs (an authid, a key, ...)."""

    def applies(self, info: HelloInfo, principal: Principal) -> bool:
        """Whether ``principal`` can authenticate with this method and this HELLO."""

    def challenge(self, info: HelloInfo, principal: Principal | None) -> AuthOutcome:
        """The CHALLENGE (or an immediate answer); ``None`` asks for a decoy."""

    def verify(
        self,
        info: HelloInfo,
        principal: Principal | None,
        challenge: AuthChallenge,
        signature: str,
        extra: dict[str, Any],
    ) -> Accept | Deny:
        """Check AUTHENTICATE against ``challenge``; a decoy must be denied."""


# -- router side: methods -------------------------------------------------------------


class TicketMethod:
    """``ticket`` (AP/authentication_ticket.md): the signature is the ticket."""

    name = "ticket"

    def __init__(self, random: RandomBytes = secrets.token_bytes) -> None:
        self._random = random

    def accepts(self, info: HelloInfo) -> bool:
        """An authid is required."""
        return info.authid is not None

    def applies(self, info: HelloInfo, principal: Principal) -> bool:
        """The principal has a ticket."""
        return principal.ticket is not None

    def challenge(self, info: HelloInfo, principal: Principal | None) -> AuthOutcome:
        """``[4, "ticket", {}]``; the state is the ticket's digest."""
        ticket = principal.ticket if principal is not None else None
        # Digests of equal length: the comparison tells nothing about the length.
        digest = self._random(32) if ticket is None else hashlib.sha256(_utf8(ticket)).digest()
        return AuthChallenge(self.name, {}, digest)

    def verify(
        self,
        info: HelloInfo,
        principal: Principal | None,
        challenge: AuthChallenge,
        signature: str,
        extra: dict[str, Any],
    ) -> Accept | Deny:
        """Compare the ticket in constant time."""
        good = hmac.compare_digest(hashlib.sha256(_utf8(signature)).digest(), challenge.state)
        return principal.accept(self.name) if good and principal is not None else _FAILED


@dataclass(slots=True)
class _CraState:
    expected: bytes
    issued: float | None
    used: bool = False


def _iso(when: float | None) -> str:
    stamp = datetime.fromtimestamp(when or 0.0, timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


class WampCraMethod:
    """``wampcra`` (AP/authentication_cra.md), plain and salted.

    ``max_age`` (seconds, None = unchecked) bounds the time between CHALLENGE
    and AUTHENTICATE; ``now`` overrides the clock (see the module docstring).
    The ``decoy_*`` parameters shape the challenge sent for an unknown authid:
    set them like the realm's real principals (``decoy_salt`` =
    ``(iterations, keylen)`` when they are salted) so both look alike.
    """

    name = "wampcra"

    def __init__(
        self,
        *,
        max_age: float | None = 60.0,
        now: Callable[[], float] | None = None,
        decoy_role: str = "user",
        decoy_provider: str = "static",
        decoy_salt: tuple[int, int] | None = None,
        random: RandomBytes = secrets.token_bytes,
    ) -> None:
        self.max_age = max_age
        self.decoy_role = decoy_role
        self.decoy_provider = decoy_provider
        self.decoy_salt = decoy_salt
        self._now = now
        self._random = random
        self._decoy_key = random(32)

    def accepts(self, info: HelloInfo) -> bool:
        """An authid is required."""
        return info.authid is not None

    def applies(self, info: HelloInfo, principal: Principal) -> bool:
        """The principal has a WAMP-CRA secret."""
        return principal.wampcra is not None

    def _decoy(self, authid: str) -> CraCredential:
        secret = base64.b64encode(self._random(32)).decode("ascii")
        if self.decoy_salt is None:
            return CraCredential(secret)
        # The same salt for the same authid each time, as a real one would be.
        salt = hmac.new(self._decoy_key, _utf8(authid), hashlib.sha256).digest()[:12]
        return CraCredential(secret, base64.b64encode(salt).decode("ascii"), *self.decoy_salt)

    def challenge(self, info: HelloInfo, principal: Principal | None) -> AuthOutcome:
        """The JSON challenge string; the state is the expected signature."""
        issued = _clock(self._now, info)
        authid = info.authid or ""
        if principal is not None and principal.wampcra is not None:
            credential, role = principal.wampcra, principal.role
            authid, provider = principal.authid or authid, principal.authprovider or "static"
        else:
            credential, role, provider = self._decoy(authid), self.decoy_role, self.decoy_provider
        # AP/authentication_cra.md: a JSON *string* with exactly these
        # members; the client signs it as sent, so it is kept verbatim.
        challenge = json.dumps(
            {
                "authid": authid,
                "authrole": role,
                "authmethod": self.name,
                "authprovider": provider,
                "nonce": base64.b64encode(self._random(24)).decode("ascii"),
                "timestamp": _iso(issued),
                "session": info.session_id,
            }
        )
        extra: dict[str, Any] = {"challenge": challenge}
        if credential.salt is not None:
            extra.update(
                salt=credential.salt, iterations=credential.iterations, keylen=credential.keylen
            )
        expected = compute_wcs(credential.secret, challenge).encode("ascii")
        return AuthChallenge(self.name, extra, _CraState(expected, issued))

    def verify(
        self,
        info: HelloInfo,
        principal: Principal | None,
        challenge: AuthChallenge,
        signature: str,
        extra: dict[str, Any],
    ) -> Accept | Deny:
        """Check the age, then the signature; each challenge counts once."""
        state = challenge.state
        if not isinstance(state, _CraState) or state.used:
            return _FAILED
        state.used = True
        if _expired(state.issued, self.max_age, _clock(self._now, info)):
            return _EXPIRED
        good = hmac.compare_digest(_utf8(signature), state.expected)
        return principal.accept(self.name) if good and principal is not None else _FAILED


@dataclass(frozen=True, slots=True)
class _CryptosignState:
    pubkey: str
    message: bytes


def _hello_pubkey(info: HelloInfo) -> str:
    key: str = _authextra(info)["pubkey"]
    return key.lower()


def _channel_id(info: HelloInfo, binding: object) -> bytes | None:
    if not isinstance(binding, str):
        return None
    table = info.transport.get(CHANNEL_BINDING)
    data = table.get(binding) if isinstance(table, Mapping) else None
    return cryptosign_channel_id(binding, data) if isinstance(data, bytes) else None


class CryptosignMethod:
    """``cryptosign`` (AP/authentication_cryptosign.md): Ed25519 over a 32-byte challenge.

    ``router_key`` answers router authentication (HELLO authextra.challenge);
    without it the CHALLENGE carries no router signature and a client that
    asked for one will refuse. A requested channel binding the transport cannot
    provide (see ``CHANNEL_BINDING``) is answered with ``channel_binding: null``.
    Certificates, trustroots and remote attestation are not implemented.
    """

    name = "cryptosign"

    def __init__(
        self, router_key: CryptosignKey | None = None, *, random: RandomBytes = secrets.token_bytes
    ) -> None:
        self.router_key = router_key
        self._random = random

    def accepts(self, info: HelloInfo) -> bool:
        """authextra.pubkey (64 hex digits) is required; a challenge, if any, is 64 too."""
        extra = _authextra(info)
        challenge = extra.get("challenge")
        return _is_hex(extra.get("pubkey"), 64) and (challenge is None or _is_hex(challenge, 64))

    def applies(self, info: HelloInfo, principal: Principal) -> bool:
        """The HELLO's public key is one of the principal's."""
        return _hello_pubkey(info) in principal.cryptosign

    def challenge(self, info: HelloInfo, principal: Principal | None) -> AuthOutcome:
        """32 random bytes, the binding in use and, if asked, the router's signature."""
        extra = _authextra(info)
        binding = extra.get("channel_binding")
        # A binding the transport cannot provide: go on unbound and say so with
        # null, which the client MUST check (AP/authentication_cryptosign.md).
        channel_id = _channel_id(info, binding)
        challenge = self._random(32)
        out: dict[str, Any] = {
            "challenge": challenge.hex(),
            "channel_binding": binding if channel_id is not None else None,
        }
        client_challenge = extra.get("challenge")
        # Router authentication: the router signs the client's challenge, XOR
        # the channel ID when bound (AP/authentication_cryptosign.md).
        if client_challenge is not None and self.router_key is not None:
            out["pubkey"] = self.router_key.public_key_hex
            out["signature"] = self.router_key.sign_challenge(client_challenge, channel_id)
        state = _CryptosignState(_hello_pubkey(info), _xor(challenge, channel_id))
        return AuthChallenge(self.name, out, state)

    def verify(
        self,
        info: HelloInfo,
        principal: Principal | None,
        challenge: AuthChallenge,
        signature: str,
        extra: dict[str, Any],
    ) -> Accept | Deny:
        """hex(signature || message): the message must be the one expected, and
        signed by the HELLO's key. The authid defaults to that key."""
        state = challenge.state
        if not isinstance(state, _CryptosignState) or not _is_hex(signature, 192):
            return _FAILED
        raw = bytes.fromhex(signature)
        good = hmac.compare_digest(raw[64:], state.message)
        try:
            Ed25519PublicKey.from_public_bytes(bytes.fromhex(state.pubkey)).verify(
                raw[:64], raw[64:]
            )
        except InvalidSignature:
            good = False
        if not good or principal is None:
            return _FAILED
        if principal.authid is None:
            principal = replace(principal, authid=state.pubkey)
        return principal.accept(self.name)


def _peer_cn(info: HelloInfo) -> str | None:
    cn = info.transport.get(TLS_PEER_CN)
    return cn if isinstance(cn, str) and cn else None


class TlsMethod:
    """``tls`` (as Crossbar names it): the client certificate the transport verified.

    No CHALLENGE: the session is admitted at once. The authid is the
    certificate's common name (see ``TLS_PEER_CN``); a HELLO authid must equal
    it. Only a principal with ``tls=True`` may log in this way. Without a
    client certificate the method is not available, as if not supported.
    """

    name = "tls"
    challenges = False

    def accepts(self, info: HelloInfo) -> bool:
        """The transport carries a verified client certificate with a common name."""
        return _peer_cn(info) is not None

    def applies(self, info: HelloInfo, principal: Principal) -> bool:
        """The principal allows ``tls`` and is the certificate's (and HELLO's) authid."""
        cn = _peer_cn(info)
        return principal.tls is True and principal.authid == cn and info.authid in (None, cn)

    def challenge(self, info: HelloInfo, principal: Principal | None) -> AuthOutcome:
        """Accept the principal, or deny (a decoy, or a principal it does not apply to)."""
        if principal is None or not self.applies(info, principal):
            return _FAILED
        return principal.accept(self.name)

    def verify(
        self,
        info: HelloInfo,
        principal: Principal | None,
        challenge: AuthChallenge,
        signature: str,
        extra: dict[str, Any],
    ) -> Accept | Deny:
        """Never called: the method sends no CHALLENGE."""
        return _FAILED


# -- router side: the authenticator -----------------------------------------------------


class _Pending:
    __slots__ = ("challenge", "method", "principal", "used")

    def __init__(
        self, method: AuthMethod, principal: Principal | None, challenge: AuthChallenge
    ) -> None:
        self.method = method
        self.principal = principal
        self.challenge = challenge
        self.used = False


class PrincipalAuthenticator:
    """An ``Authenticator`` serving principals per realm.

    ``principals[realm][authid]`` is the static table (authprovider
    ``static``; the key is the authid). ``lookup(info, authmethod)`` is asked
    for principals the table lacks (authprovider ``dynamic`` unless the
    Principal names one; for ``cryptosign`` without an authid it finds the
    principal by ``info.details["authextra"]["pubkey"]``, for ``tls`` by
    ``info.transport["tls_peer_cn"]``). ``anonymous[realm]`` is the role given
    to ``anonymous`` sessions (absent: not allowed). ``methods`` is the
    registry (default: ticket, wampcra, cryptosign without a router key, tls).

    The router takes the first method in HELLO.authmethods that it supports and
    the principal has. An unknown authid, or one without usable credentials,
    gets a decoy CHALLENGE for the first supported method and then fails like
    a wrong credential would (a method without CHALLENGE, ``tls``, is never a
    decoy: with no other, the HELLO is denied at once).
    ``no_matching_auth_method`` only means no offered method is supported at
    all. An exception in a method or ``lookup`` denies the session (fail
    secure).
    """

    def __init__(
        self,
        principals: Mapping[str, Mapping[str, Principal]] | None = None,
        *,
        anonymous: Mapping[str, str] | None = None,
        lookup: Lookup | None = None,
        methods: Iterable[AuthMethod] | None = None,
    ) -> None:
        if methods is None:
            methods = (TicketMethod(), WampCraMethod(), CryptosignMethod(), TlsMethod())
        self.methods: dict[str, AuthMethod] = {method.name: method for method in methods}
        self.anonymous = dict(anonymous or {})
        self.lookup = lookup
        self.principals: dict[str, dict[str, Principal]] = {}
        self._by_pubkey: dict[str, dict[str, str]] = {}
        for realm, table in (principals or {}).items():
            self.principals[realm] = {
                authid: replace(p, authid=authid, authprovider=p.authprovider or "static")
                for authid, p in table.items()
            }
            index = self._by_pubkey[realm] = {}
            for authid, principal in table.items():
                for key in principal.cryptosign:
                    if index.setdefault(key, authid) != authid:
                        raise ValueError(f"realm {realm!r}: two principals have key {key}")

    def hello(self, info: HelloInfo) -> AuthOutcome:
        """Pick a method, look the principal up, and challenge (or accept anonymous)."""
        try:
            return self._hello(info)
        except Exception:
            return _BROKEN

    def _hello(self, info: HelloInfo) -> AuthOutcome:
        decoy: AuthMethod | None = None
        refused = False
        for name in info.authmethods:
            if name == "anonymous":
                role = self.anonymous.get(info.realm)
                if role is not None:
                    # Not the authid the client asked for (as Crossbar): an
                    # anonymous session must not pose as a named principal.
                    return Accept(f"anonymous-{info.session_id}", role, "anonymous", "static")
                continue
            method = self.methods.get(name)
            if method is None or not method.accepts(info):
                continue
            principal = self._find(info, method)
            if principal is not None and method.applies(info, principal):
                return self._challenge(info, method, principal)
            if getattr(method, "challenges", True):
                decoy = decoy or method
            else:
                refused = True
        if decoy is None:
            return _FAILED if refused else _NO_METHOD
        return self._challenge(info, decoy, None)

    def _find(self, info: HelloInfo, method: AuthMethod) -> Principal | None:
        authid = info.authid
        if authid is None and method.name == "cryptosign":
            authid = self._by_pubkey.get(info.realm, {}).get(_hello_pubkey(info))
        elif method.name == "tls":
            authid = _peer_cn(info)
        principal = self.principals.get(info.realm, {}).get(authid) if authid else None
        if principal is None and self.lookup is not None:
            found = self.lookup(info, method.name)
            if found is not None:
                if not isinstance(found, Principal):
                    raise TypeError("lookup must return a Principal or None")
                principal = replace(
                    found,
                    authid=found.authid or authid,
                    authprovider=found.authprovider or "dynamic",
                )
        return principal

    def _challenge(
        self, info: HelloInfo, method: AuthMethod, principal: Principal | None
    ) -> AuthOutcome:
        outcome = method.challenge(info, principal)
        if isinstance(outcome, AuthChallenge):
            pending = _Pending(method, principal, outcome)
            return AuthChallenge(outcome.authmethod, outcome.extra, pending)
        if principal is None and isinstance(outcome, Accept):
            return _FAILED  # a decoy never gets in
        return outcome

    def authenticate(
        self, info: HelloInfo, challenge: AuthChallenge, signature: str, extra: dict[str, Any]
    ) -> AuthOutcome:
        """Verify AUTHENTICATE with the method that sent the challenge (once)."""
        pending = challenge.state
        if not isinstance(pending, _Pending) or pending.used:
            return _FAILED
        pending.used = True
        try:
            outcome = pending.method.verify(
                info, pending.principal, pending.challenge, signature, extra
            )
        except Exception:
            return _BROKEN
        if pending.principal is None and isinstance(outcome, Accept):
            return _FAILED
        return outcome
