"""WAMP-SCRAM authentication (AP/authentication_scram.md), sans-IO, both sides.

Two spellings of the method are in use, and both are spoken here:

* ``"wamp-scram"`` -- the spec (AP/authentication_scram.md, RFC 5802/7677):
  KDF names ``argon2id13``/``pbkdf2``; HELLO ``authextra`` carries ``nonce`` and
  ``channel_binding``; the combined nonce is the client nonce *string* followed
  by the server's; the AuthMessage's ``c=`` is ``Base64(gs2-header +
  binding data)`` (``biws`` when unbound); AUTHENTICATE ``extra`` repeats
  ``nonce``, ``channel_binding``, ``cbind_data``; WELCOME
  ``authextra.verifier`` carries the ServerSignature.
* ``"scram"`` -- Autobahn (``autobahn/wamp/auth.py`` ``AuthScram``) and
  Crossbar (``crossbar/router/auth/scram.py``): KDF name ``argon2id-13``
  (``pbkdf2`` is named but Autobahn's own client cannot run it); the combined
  nonce is ``Base64(client nonce octets + server nonce octets)``; ``c=`` is
  empty; the username in the AuthMessage is SASLprep'ed but not escaped;
  AUTHENTICATE ``extra`` is empty; WELCOME ``authextra.scram_server_signature``
  carries the ServerSignature. No channel binding.

The KDF name belongs to the stored credential, not to the spelling: Autobahn's
``argon2id-13`` SaltedPassword is the *text* of the hash (argon2's unpadded
base64 of the 32 octets, 43 ASCII bytes) computed over the raw UTF-8 password,
while ``argon2id13`` and ``pbkdf2`` use the 32 raw octets over the SASLprep'ed
password. So the keys differ, the router sends the credential's KDF name
whichever spelling the client chose, and the client computes what that name
says.

Router side: ``ScramMethod`` (an ``AuthMethod`` for ``PrincipalAuthenticator``,
one object per spelling) and ``ScramAuthenticator`` (an ``Authenticator`` over a
mapping ``authid -> (authrole, ScramCredential)``). Client side:
``ScramClient``. ``derive_scram_credential`` turns a password into what the router
stores (salt, StoredKey, ServerKey), so no password is kept.

Channel binding (``tls-unique``, ``tls-server-end-point``; RFC 5929) needs the
adapter to report the binding data in ``HelloInfo.transport["channel_binding"]``
(``_authmethods.CHANNEL_BINDING``, shared with cryptosign) as ``{"tls-unique":
<the first TLS Finished message>, "tls-server-end-point": <the hash of the
router's certificate>}``, with only the types it can provide. A client asking
for a type the transport does not provide is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import stringprep
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from argon2.low_level import Type, hash_secret_raw

from ._auth import Accept, AuthChallenge, AuthOutcome, Deny, HelloInfo
from ._authmethods import (
    CHANNEL_BINDING,
    Principal,
    PrincipalAuthenticator,
    _clock,
    _expired,
)
from ._errors import LocalProtocolError, ProtocolError
from ._uri import ErrorURI

__all__ = [
    "AUTOBAHN_SCRAM",
    "RFC_SCRAM",
    "SCRAM_AUTHMETHODS",
    "SCRAM_CHANNEL_BINDINGS",
    "SCRAM_KDF_ARGON2ID13",
    "SCRAM_KDF_ARGON2ID_13",
    "SCRAM_KDF_PBKDF2",
    "ScramAuthenticator",
    "ScramClient",
    "ScramCredential",
    "ScramError",
    "ScramMethod",
    "derive_scram_credential",
    "saslprep",
    "scram_salted_password",
]

RFC_SCRAM: Final = "wamp-scram"
"""The spec's authmethod (AP/authentication_scram.md, "authmethod Type String")."""
AUTOBAHN_SCRAM: Final = "scram"
"""The authmethod Autobahn and Crossbar use."""
SCRAM_AUTHMETHODS: Final = (RFC_SCRAM, AUTOBAHN_SCRAM)

SCRAM_KDF_ARGON2ID13: Final = "argon2id13"
"""The spec's Argon2id v1.3: SaltedPassword = the 32 raw octets."""
SCRAM_KDF_ARGON2ID_13: Final = "argon2id-13"
"""Autobahn's Argon2id v1.3: SaltedPassword = the hash's unpadded base64 text."""
SCRAM_KDF_PBKDF2: Final = "pbkdf2"
"""PBKDF2-HMAC-SHA256, dkLen 32."""
_KDFS: Final = frozenset({SCRAM_KDF_ARGON2ID13, SCRAM_KDF_ARGON2ID_13, SCRAM_KDF_PBKDF2})

SCRAM_CHANNEL_BINDINGS: Final = ("tls-unique", "tls-server-end-point")
"""The binding types AP/authentication_scram.md allows (RFC 5929)."""

DEFAULT_ARGON2_ITERATIONS: Final = 3
DEFAULT_ARGON2_MEMORY: Final = 65536
"""RFC 9106's second recommended option: t=3, m=64 MiB (p is fixed to 1 here)."""
DEFAULT_PBKDF2_ITERATIONS: Final = 600_000
"""OWASP's 2023 figure for PBKDF2-HMAC-SHA256 (RFC 7677 asks for at least 4096)."""

MIN_PBKDF2_ITERATIONS: Final = 4096
"""RFC 7677 section 4: at least 4096 iterations."""
MIN_ARGON2_MEMORY: Final = 512
"""KiB. Autobahn's and Crossbar's default (t=4096, m=512) must still pass."""
MIN_ARGON2_WORK: Final = 32768
"""iterations x memory (KiB): e.g. 32 MiB x 1, 16 MiB x 2 or 512 KiB x 64."""
MAX_ITERATIONS: Final = 10_000_000
MAX_ARGON2_MEMORY: Final = 4 * 1024 * 1024
"""KiB (4 GiB): a rogue router must not make the client exhaust its memory."""

_NONCE_OCTETS: Final = 16  # "16 octets (128 bits) is recommended" (Nonces)
_SALT_OCTETS: Final = 16  # "A 128-bit salt is recommended" (Argon2)
_KEY_OCTETS: Final = 32
_UINT32: Final = 2**32 - 1  # argon2's bound on its costs
_FAILED: Final = Deny(ErrorURI.AUTHENTICATION_FAILED, "authentication failed")
"""The one answer for every failed proof (never say which part was wrong)."""


class ScramError(ProtocolError):
    """The router's side of a SCRAM exchange is not acceptable (client side).

    ``reason`` is ``wamp.error.authentication_failed``; during the challenge,
    answer with ``ClientSession.abort(err.reason, err.message)``; after WELCOME,
    leave and drop the connection.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, ErrorURI.AUTHENTICATION_FAILED)


# -- SASLprep (RFC 4013 over RFC 3454, with the stdlib's Unicode 3.2 tables) ------------


def saslprep(text: str) -> str:
    """Prepare ``text`` with SASLprep (RFC 4013) as a stored string.

    Raises ``ValueError`` for prohibited, unassigned (in Unicode 3.2) or
    badly mixed bidirectional characters. AP/authentication_scram.md
    ("Username/Password String Normalization") requires this for usernames and
    passwords; RFC 5802 treats them as stored strings (unassigned prohibited).
    """
    # RFC 4013 2.1: non-ASCII spaces -> SPACE; "commonly mapped to nothing" -> dropped.
    mapped = "".join(
        " " if stringprep.in_table_c12(c) else c for c in text if not stringprep.in_table_b1(c)
    )
    # RFC 4013 2.2: NFKC, with the Unicode version stringprep is defined on.
    prepared = unicodedata.ucd_3_2_0.normalize("NFKC", mapped)
    for c in prepared:
        if (
            stringprep.in_table_c12(c)
            or stringprep.in_table_c21_c22(c)
            or stringprep.in_table_c3(c)
            or stringprep.in_table_c4(c)
            or stringprep.in_table_c5(c)
            or stringprep.in_table_c6(c)
            or stringprep.in_table_c7(c)
            or stringprep.in_table_c8(c)
            or stringprep.in_table_c9(c)
            or stringprep.in_table_a1(c)
        ):
            raise ValueError(f"SASLprep: prohibited character U+{ord(c):04X}")
    # RFC 3454 section 6: RandALCat strings hold no LCat and start and end with RandALCat.
    if any(stringprep.in_table_d1(c) for c in prepared) and (
        any(stringprep.in_table_d2(c) for c in prepared)
        or not stringprep.in_table_d1(prepared[0])
        or not stringprep.in_table_d1(prepared[-1])
    ):
        raise ValueError("SASLprep: invalid bidirectional text")
    return prepared


# -- primitives -----------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object) -> bytes | None:
    """Decode canonical base64 (AP/authentication_scram.md, "Base64 encoding"), else None."""
    if not isinstance(text, str) or not text.isascii():
        return None
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error:
        return None
    return data if _b64(data) == text else None


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.digest(key, data, "sha256")


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _escape(name: str) -> str:
    """RFC 5802 ``saslname``: "=" -> "=3D", "," -> "=2C" (the spec's Escape())."""
    return name.replace("=", "=3D").replace(",", "=2C")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_params(kdf: str, iterations: int, memory: int | None) -> None:
    if kdf not in _KDFS:
        raise ValueError(f"unknown SCRAM KDF {kdf!r}")
    if not _is_int(iterations) or not 1 <= iterations <= _UINT32:
        raise ValueError("iterations must be a positive 32-bit integer")
    if kdf == SCRAM_KDF_PBKDF2:
        if memory is not None:
            raise ValueError("pbkdf2 takes no memory cost")
    elif memory is None or not _is_int(memory) or not 8 <= memory <= _UINT32:
        raise ValueError("argon2 needs a memory cost of at least 8 KiB (32 bits)")


def scram_salted_password(
    password: str, *, kdf: str, salt: bytes, iterations: int, memory: int | None = None
) -> bytes:
    """SaltedPassword = KDF(Normalize(password), salt, params) for ``kdf``.

    The salt is the decoded octets (RFC 5802; Autobahn decodes it too, and
    Crossbar stores octets and sends their base64). ``argon2id-13`` follows
    Autobahn: the raw UTF-8 password (no SASLprep) and the hash's unpadded
    base64 text as the key.
    """
    _check_params(kdf, iterations, memory)
    if kdf == SCRAM_KDF_PBKDF2:
        return hashlib.pbkdf2_hmac(
            "sha256", saslprep(password).encode("utf-8"), salt, iterations, _KEY_OCTETS
        )
    assert memory is not None
    if len(salt) < 8:
        raise ValueError("argon2 needs a salt of at least 8 octets")
    secret = password if kdf == SCRAM_KDF_ARGON2ID_13 else saslprep(password)
    raw = hash_secret_raw(
        secret.encode("utf-8"),
        salt,
        time_cost=iterations,
        memory_cost=memory,
        parallelism=1,  # fixed by AP/authentication_scram.md ("Argon2")
        hash_len=_KEY_OCTETS,
        type=Type.ID,
        version=19,  # v1.3
    )
    if kdf == SCRAM_KDF_ARGON2ID_13:
        return base64.b64encode(raw).rstrip(b"=")
    return raw


def _client_key(salted: bytes) -> bytes:
    return _hmac(salted, b"Client Key")


def _server_key(salted: bytes) -> bytes:
    return _hmac(salted, b"Server Key")


def _auth_message(
    *, name: str, client_nonce: str, nonce: str, salt: str, iterations: int, cbind: str
) -> bytes:
    """ClientFirstBare "," ServerFirst "," ClientFinalNoProof (the spec's "AuthMessage")."""
    return (
        f"n={name},r={client_nonce},r={nonce},s={salt},i={iterations},c={cbind},r={nonce}"
    ).encode("utf-8", "surrogatepass")  # a JSON authid may hold a lone surrogate


def _gs2_cbind(channel_binding: str | None, data: bytes | None) -> str:
    """The ``c=`` value of the spec: Base64(CBindFlag + ",," + binding data)."""
    if channel_binding is None:
        return _b64(b"n,,")
    assert data is not None
    return _b64(f"p={channel_binding},,".encode() + data)


def _client_proof(salted: bytes, auth_message: bytes) -> bytes:
    client_key = _client_key(salted)
    return _xor(client_key, _hmac(hashlib.sha256(client_key).digest(), auth_message))


# -- credentials ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScramCredential:
    """What the router stores for a user (AP/authentication_scram.md, "Data Stored on
    the Server"): the KDF and its costs, the salt, StoredKey and ServerKey."""

    kdf: str
    iterations: int
    memory: int | None
    salt: bytes
    stored_key: bytes = field(repr=False)
    server_key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _check_params(self.kdf, self.iterations, self.memory)
        if not self.salt:
            raise ValueError("the salt must not be empty")
        if len(self.stored_key) != _KEY_OCTETS or len(self.server_key) != _KEY_OCTETS:
            raise ValueError("StoredKey and ServerKey are 32 octets")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScramCredential:
        """Read Crossbar's principal form (what Autobahn's ``derive_scram_credential``
        prints): ``kdf``, ``iterations``, ``memory``, and ``salt``, ``stored-key``,
        ``server-key`` in hex."""
        kdf = data["kdf"]
        return cls(
            kdf,
            data["iterations"],
            None if kdf == SCRAM_KDF_PBKDF2 else data.get("memory"),
            bytes.fromhex(data["salt"]),
            bytes.fromhex(data["stored-key"]),
            bytes.fromhex(data["server-key"]),
        )

    def to_dict(self) -> dict[str, Any]:
        """The inverse of ``from_dict``."""
        return {
            "kdf": self.kdf,
            "iterations": self.iterations,
            "memory": self.memory,
            "salt": self.salt.hex(),
            "stored-key": self.stored_key.hex(),
            "server-key": self.server_key.hex(),
        }


def derive_scram_credential(
    password: str,
    *,
    kdf: str = SCRAM_KDF_ARGON2ID13,
    salt: bytes | None = None,
    iterations: int | None = None,
    memory: int | None = None,
) -> ScramCredential:
    """Hash ``password`` into a ``ScramCredential`` (a random 16-octet salt by default).

    Defaults: argon2 t=3, m=65536 KiB; pbkdf2 600000 iterations. Use
    ``kdf="argon2id-13"`` for users who log in with Autobahn's client.
    """
    if kdf != SCRAM_KDF_PBKDF2:
        iterations = DEFAULT_ARGON2_ITERATIONS if iterations is None else iterations
        memory = DEFAULT_ARGON2_MEMORY if memory is None else memory
    elif iterations is None:
        iterations = DEFAULT_PBKDF2_ITERATIONS
    salt = secrets.token_bytes(_SALT_OCTETS) if salt is None else salt
    salted = scram_salted_password(
        password, kdf=kdf, salt=salt, iterations=iterations, memory=memory
    )
    client_key = _client_key(salted)
    return ScramCredential(
        kdf, iterations, memory, salt, hashlib.sha256(client_key).digest(), _server_key(salted)
    )


# -- router side -------------------------------------------------------------------------------


@dataclass(slots=True)
class _ScramState:
    """What ``verify`` needs of a CHALLENGE that was sent (``AuthChallenge.state``)."""

    credential: ScramCredential
    auth_message: bytes  # the server's own view, computed when challenging
    nonce: str
    channel_binding: str | None
    cbind_data: bytes | None
    issued: float | None
    decoy: bool
    used: bool = False


class ScramMethod:
    """WAMP-SCRAM for ``PrincipalAuthenticator`` (``wamp_core._authmethods.AuthMethod``).

    One object per spelling: ``ScramMethod()`` is ``wamp-scram``,
    ``ScramMethod("scram")`` the Autobahn/Crossbar one. A principal keeps its
    ``ScramCredential`` in ``Principal.credentials["wamp-scram"]`` or
    ``["scram"]`` (either serves both spellings). ``principal=None`` asks for a
    decoy: a CHALLENGE shaped by ``decoy_params`` (kdf, iterations, memory; set
    them like the real users') with a salt that is stable per authid, as the
    spec suggests (keyed by ``decoy_key``, random per object unless given: pass
    a stored one to keep decoy salts stable across restarts), which then fails
    like a wrong password. ``max_age``
    (seconds, None = unchecked) bounds the time between CHALLENGE and
    AUTHENTICATE (the spec's "in due time"); the clock is ``now()``, else
    ``HelloInfo.now``; with neither, the age is not checked.
    """

    def __init__(
        self,
        authmethod: str = RFC_SCRAM,
        *,
        max_age: float | None = 60.0,
        now: Callable[[], float] | None = None,
        decoy_params: tuple[str, int, int | None] = (
            SCRAM_KDF_ARGON2ID13,
            DEFAULT_ARGON2_ITERATIONS,
            DEFAULT_ARGON2_MEMORY,
        ),
        decoy_key: bytes | None = None,
        random: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        if authmethod not in SCRAM_AUTHMETHODS:
            raise ValueError(f"authmethod must be one of {SCRAM_AUTHMETHODS}")
        _check_params(*decoy_params)
        self.name = authmethod
        self.max_age = max_age
        self.decoy_params = decoy_params
        self._now = now
        self._random = random
        self._decoy_key = random(32) if decoy_key is None else decoy_key

    def accepts(self, info: HelloInfo) -> bool:
        """An authid is required (it is the SCRAM username)."""
        return info.authid is not None

    def applies(self, info: HelloInfo, principal: Principal) -> bool:
        """The principal has a ``ScramCredential``."""
        return _credential(principal) is not None

    def _decoy(self, authid: str) -> ScramCredential:
        kdf, iterations, memory = self.decoy_params
        salt = _hmac(self._decoy_key, authid.encode("utf-8", "surrogatepass"))[:_SALT_OCTETS]
        return ScramCredential(kdf, iterations, memory, salt, self._random(32), self._random(32))

    def challenge(self, info: HelloInfo, principal: Principal | None) -> AuthChallenge | Deny:
        """Answer a HELLO with a CHALLENGE in this method's spelling."""
        authid = info.authid
        if authid is None:
            return Deny(ErrorURI.AUTHENTICATION_FAILED, "WAMP-SCRAM needs an authid")
        authextra = info.details.get("authextra")
        authextra = authextra if isinstance(authextra, dict) else {}
        client_nonce = authextra.get("nonce")
        client_octets = _unb64(client_nonce)
        if not client_octets:
            return Deny(
                ErrorURI.AUTHENTICATION_FAILED, "WAMP-SCRAM needs authextra.nonce in base64"
            )
        assert isinstance(client_nonce, str)
        channel_binding = authextra.get("channel_binding")
        cbind_data: bytes | None = None
        if channel_binding is not None:
            # The "scram" spelling has no channel binding (Autobahn puts the CHALLENGE's
            # channel_binding into c=, Crossbar never sends one): refuse, never ignore.
            available = info.transport.get(CHANNEL_BINDING)
            if (
                self.name == RFC_SCRAM
                and isinstance(channel_binding, str)
                and isinstance(available, dict)
            ):
                data = available.get(channel_binding)
                cbind_data = data if isinstance(data, bytes) and data else None
            if cbind_data is None:
                return Deny(
                    ErrorURI.AUTHENTICATION_FAILED,
                    "the requested channel binding is not available on this transport",
                )
        if self.name == RFC_SCRAM:
            name = _escape(authid)
        else:
            try:  # Autobahn and Crossbar put SASLprep(authid), unescaped, into the AuthMessage
                name = saslprep(authid)
            except ValueError:
                return Deny(ErrorURI.AUTHENTICATION_FAILED, "the authid fails SASLprep")
        credential = None if principal is None else _credential(principal)
        decoy = credential is None
        if credential is None:
            credential = self._decoy(authid)
        server_octets = self._random(_NONCE_OCTETS)
        if self.name == RFC_SCRAM:
            # "A server-generated nonce that is appended to the client-generated nonce".
            nonce = client_nonce + _b64(server_octets)
            cbind = _gs2_cbind(channel_binding, cbind_data)
        else:
            # Crossbar: base64 of the client nonce's octets followed by the server's.
            nonce = _b64(client_octets + server_octets)
            cbind = ""  # Autobahn and Crossbar: an empty c=
        salt = _b64(credential.salt)
        extra: dict[str, Any] = {
            "nonce": nonce,
            "salt": salt,
            "kdf": credential.kdf,
            "iterations": credential.iterations,
        }
        # The spec sends "memory": null for pbkdf2; Autobahn's client fails on a null.
        if self.name == RFC_SCRAM or credential.memory is not None:
            extra["memory"] = credential.memory
        auth_message = _auth_message(
            name=name,
            client_nonce=client_nonce,
            nonce=nonce,
            salt=salt,
            iterations=credential.iterations,
            cbind=cbind,
        )
        state = _ScramState(
            credential,
            auth_message,
            nonce,
            channel_binding,
            cbind_data,
            _clock(self._now, info),
            decoy,
        )
        return AuthChallenge(self.name, extra, state)

    def verify(
        self,
        info: HelloInfo,
        principal: Principal | None,
        challenge: AuthChallenge,
        signature: str,
        extra: dict[str, Any],
    ) -> Accept | Deny:
        """Check the ClientProof of an AUTHENTICATE; each CHALLENGE is good once."""
        state = challenge.state
        if not isinstance(state, _ScramState) or state.used:
            return _FAILED
        state.used = True
        timely = not _expired(state.issued, self.max_age, _clock(self._now, info))
        nonce = extra.get("nonce")
        binding = extra.get("channel_binding")
        cbind = extra.get("cbind_data")
        if self.name == RFC_SCRAM:
            # "nonce matches the one previously sent", "channel_binding matches the one sent
            # in the HELLO", "cbind_data ... matches the data the server sees".
            fields_ok = _same(nonce, state.nonce) and binding == state.channel_binding
            if state.cbind_data is None:
                fields_ok = fields_ok and cbind is None
            else:
                seen = _unb64(cbind) or b""
                fields_ok = hmac.compare_digest(seen, state.cbind_data) and fields_ok
        else:
            # Autobahn sends an empty extra; check what a client does send.
            fields_ok = (nonce is None or _same(nonce, state.nonce)) and (
                binding is None and cbind is None
            )
        proof = _unb64(signature)
        if proof is None or len(proof) != _KEY_OCTETS:
            proof = bytes(_KEY_OCTETS)  # still do the work: no early exit
        stored_key = state.credential.stored_key
        client_key = _xor(_hmac(stored_key, state.auth_message), proof)
        proof_ok = hmac.compare_digest(hashlib.sha256(client_key).digest(), stored_key)
        if not (timely and fields_ok and proof_ok) or state.decoy or principal is None:
            return _FAILED
        server_signature = _b64(_hmac(state.credential.server_key, state.auth_message))
        key = "verifier" if self.name == RFC_SCRAM else "scram_server_signature"
        return principal.accept(self.name, {key: server_signature})


def _same(value: object, expected: str) -> bool:
    return isinstance(value, str) and hmac.compare_digest(
        value.encode("utf-8", "surrogatepass"), expected.encode("utf-8")
    )


def _credential(principal: Principal) -> ScramCredential | None:
    for key in SCRAM_AUTHMETHODS:
        credential = principal.credentials.get(key)
        if isinstance(credential, ScramCredential):
            return credential
    return None


class ScramAuthenticator:
    """An ``Authenticator`` admitting the users of ``principals`` by WAMP-SCRAM.

    A ``PrincipalAuthenticator`` with both spellings, for any realm.
    ``principals`` maps authid to ``(authrole, ScramCredential)`` or a
    ``Principal``; it is read at each HELLO, so it may change. The keyword
    arguments go to both ``ScramMethod`` objects; ``decoy_params`` defaults to
    the most common (kdf, iterations, memory) among the principals.
    """

    def __init__(
        self,
        principals: Mapping[str, tuple[str, ScramCredential] | Principal],
        *,
        max_age: float | None = 60.0,
        now: Callable[[], float] | None = None,
        decoy_params: tuple[str, int, int | None] | None = None,
        decoy_key: bytes | None = None,
        random: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self.principals = principals
        decoy_key = random(32) if decoy_key is None else decoy_key
        if decoy_params is None:
            counts = Counter(
                (c.kdf, c.iterations, c.memory)
                for c in map(_entry_credential, principals.values())
                if c is not None
            )
            decoy_params = (
                counts.most_common(1)[0][0]
                if counts
                else (SCRAM_KDF_ARGON2ID13, DEFAULT_ARGON2_ITERATIONS, DEFAULT_ARGON2_MEMORY)
            )
        methods = [
            ScramMethod(
                name,
                max_age=max_age,
                now=now,
                decoy_params=decoy_params,
                decoy_key=decoy_key,
                random=random,
            )
            for name in SCRAM_AUTHMETHODS
        ]
        self.authenticator = PrincipalAuthenticator(lookup=self._lookup, methods=methods)

    def _lookup(self, info: HelloInfo, authmethod: str) -> Principal | None:
        entry = None if info.authid is None else self.principals.get(info.authid)
        if entry is None or isinstance(entry, Principal):
            return entry
        role, credential = entry
        return Principal(role, credentials={RFC_SCRAM: credential}, authprovider="static")

    def hello(self, info: HelloInfo) -> AuthOutcome:
        """Send a CHALLENGE (a decoy for an unknown authid)."""
        return self.authenticator.hello(info)

    def authenticate(
        self, info: HelloInfo, challenge: AuthChallenge, signature: str, extra: dict[str, Any]
    ) -> AuthOutcome:
        """Verify the ClientProof."""
        return self.authenticator.authenticate(info, challenge, signature, extra)


def _entry_credential(entry: tuple[str, ScramCredential] | Principal) -> ScramCredential | None:
    return _credential(entry) if isinstance(entry, Principal) else entry[1]


# -- client side -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Attempt:
    nonce: str
    channel_binding: str | None
    cbind_data: bytes | None
    authmethod: str | None = None
    salted: bytes = b""
    auth_message: bytes = b""


class ScramClient:
    """The client side of WAMP-SCRAM for ``authid`` and ``password``.

    One object serves any number of join attempts, each of them::

        session.join("realm1", **scram.hello())
        # ChallengeReceived(authmethod, extra):
        session.authenticate(*scram.challenge(authmethod, extra))
        # SessionJoined(details):
        scram.welcome(details)  # raises ScramError if the router is not genuine

    ``authmethods`` are offered in order (``("scram",)`` for Crossbar). The
    client refuses KDF costs below ``min_*`` (the spec's "unusually low"
    parameters, which a rogue router would ask for to get a weak hash) or above
    ``max_*``. The SaltedPassword is cached per (kdf, salt, costs).
    """

    def __init__(
        self,
        authid: str,
        password: str,
        *,
        authmethods: Sequence[str] = (RFC_SCRAM,),
        min_pbkdf2_iterations: int = MIN_PBKDF2_ITERATIONS,
        min_argon2_memory: int = MIN_ARGON2_MEMORY,
        min_argon2_work: int = MIN_ARGON2_WORK,
        max_iterations: int = MAX_ITERATIONS,
        max_memory: int = MAX_ARGON2_MEMORY,
        random: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        if (
            isinstance(authmethods, str)
            or not authmethods
            or not all(m in SCRAM_AUTHMETHODS for m in authmethods)
        ):
            raise ValueError(f"authmethods must be taken from {SCRAM_AUTHMETHODS}")
        # RFC 5802 via the spec: the client prepares the username. SASLprep is
        # idempotent, so the "scram" spelling's SASLprep(authid) sees the same text.
        self.authid = saslprep(authid)
        self.authmethods = list(authmethods)
        self.min_pbkdf2_iterations = min_pbkdf2_iterations
        self.min_argon2_memory = min_argon2_memory
        self.min_argon2_work = min_argon2_work
        self.max_iterations = max_iterations
        self.max_memory = max_memory
        self._password = password
        self._random = random
        self._cache: dict[tuple[str, bytes, int, int | None], bytes] = {}
        self._attempt: _Attempt | None = None

    def hello(
        self, channel_binding: str | None = None, cbind_data: bytes | None = None
    ) -> dict[str, Any]:
        """Start an attempt: the keyword arguments for ``ClientSession.join``.

        ``channel_binding`` (``tls-unique`` or ``tls-server-end-point``) needs
        the binding data of this connection in ``cbind_data`` and the
        ``wamp-scram`` spelling.
        """
        if channel_binding is not None:
            if channel_binding not in SCRAM_CHANNEL_BINDINGS:
                raise ValueError(f"channel_binding must be one of {SCRAM_CHANNEL_BINDINGS}")
            if not cbind_data:
                raise ValueError("channel binding needs the channel's binding data")
            if RFC_SCRAM not in self.authmethods:
                raise ValueError("only the 'wamp-scram' spelling has channel binding")
        nonce = _b64(self._random(_NONCE_OCTETS))
        self._attempt = _Attempt(nonce, channel_binding, cbind_data)
        return {
            "authmethods": list(self.authmethods),
            "authid": self.authid,
            "authextra": {"nonce": nonce, "channel_binding": channel_binding},
        }

    def _check_costs(self, kdf: str, iterations: int, memory: int | None) -> None:
        if iterations > self.max_iterations:
            raise ScramError("the router asks for too many KDF iterations")
        if kdf == SCRAM_KDF_PBKDF2:
            if iterations < self.min_pbkdf2_iterations:
                raise ScramError("the router asks for unusually low KDF costs")
            return
        if not _is_int(memory):
            raise ScramError("the CHALLENGE lacks the argon2 memory cost")
        assert isinstance(memory, int)
        if memory > self.max_memory:
            raise ScramError("the router asks for too much KDF memory")
        if memory < self.min_argon2_memory or iterations * memory < self.min_argon2_work:
            raise ScramError("the router asks for unusually low KDF costs")

    def challenge(self, authmethod: str, extra: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """Answer a CHALLENGE: the ``(signature, extra)`` for ``ClientSession.authenticate``.

        Raises ``ScramError`` (abort the join) for a CHALLENGE that breaks the
        rules: a nonce not extending ours, a bad salt, an unknown KDF, costs out
        of bounds.
        """
        attempt = self._attempt
        if attempt is None:
            raise LocalProtocolError("call hello() before challenge()")
        if authmethod not in self.authmethods:
            raise ScramError(f"the router challenged with {authmethod!r}, which was not offered")
        nonce, kdf, iterations = extra.get("nonce"), extra.get("kdf"), extra.get("iterations")
        salt = extra.get("salt")
        salt_octets = _unb64(salt)
        if not isinstance(nonce, str) or not salt_octets or not _is_int(iterations):
            raise ScramError("malformed WAMP-SCRAM CHALLENGE")
        assert isinstance(salt, str)
        assert isinstance(iterations, int)
        if kdf not in _KDFS:
            raise ScramError(f"unknown KDF {kdf!r}")
        assert isinstance(kdf, str)
        # "The client MUST respond with an ABORT message if CHALLENGE.Details.nonce
        # does not begin with the client nonce". Crossbar joins the octets instead.
        extends = len(nonce) > len(attempt.nonce) and nonce.startswith(attempt.nonce)
        if authmethod == AUTOBAHN_SCRAM and not extends:
            ours, theirs = _unb64(attempt.nonce), _unb64(nonce)
            assert ours is not None
            extends = theirs is not None and len(theirs) > len(ours) and theirs.startswith(ours)
        if not extends:
            raise ScramError("the router's nonce does not extend the client nonce")
        if attempt.channel_binding is not None and authmethod != RFC_SCRAM:
            raise ScramError("the router chose a spelling without channel binding")
        memory = None if kdf == SCRAM_KDF_PBKDF2 else extra.get("memory")
        self._check_costs(kdf, iterations, memory)
        key = (kdf, salt_octets, iterations, memory)
        salted = self._cache.get(key)
        if salted is None:
            try:
                salted = scram_salted_password(
                    self._password, kdf=kdf, salt=salt_octets, iterations=iterations, memory=memory
                )
            except ValueError as exc:  # e.g. a password SASLprep prohibits
                raise ScramError(str(exc)) from None
            self._cache[key] = salted
        if authmethod == RFC_SCRAM:
            name, cbind = (
                _escape(self.authid),
                _gs2_cbind(attempt.channel_binding, attempt.cbind_data),
            )
            answer: dict[str, Any] = {
                "nonce": nonce,
                "channel_binding": attempt.channel_binding,
                "cbind_data": None if attempt.cbind_data is None else _b64(attempt.cbind_data),
            }
        else:
            name, cbind, answer = self.authid, "", {}  # as Autobahn
        attempt.auth_message = _auth_message(
            name=name,
            client_nonce=attempt.nonce,
            nonce=nonce,
            salt=salt,
            iterations=iterations,
            cbind=cbind,
        )
        attempt.authmethod = authmethod
        attempt.salted = salted
        return _b64(_client_proof(salted, attempt.auth_message)), answer

    def welcome(self, details: dict[str, Any]) -> None:
        """Check the ServerSignature in WELCOME.Details (mutual authentication).

        Raises ``ScramError`` when the router did not prove it knows the
        ServerKey: the session must then be dropped.
        """
        attempt, self._attempt = self._attempt, None
        if attempt is None or attempt.authmethod is None:
            raise ScramError("the router admitted the session without WAMP-SCRAM")
        if details.get("authmethod") != attempt.authmethod:
            raise ScramError("the WELCOME names another authmethod")
        authextra = details.get("authextra")
        authextra = authextra if isinstance(authextra, dict) else {}
        if attempt.authmethod == RFC_SCRAM:
            value = authextra.get("verifier")
            # The spec's example shows "v=<base64>" (the RFC 5802 attribute) while its
            # text says the base64 ServerSignature: accept both ("v=" is not base64).
            if isinstance(value, str) and value.startswith("v="):
                value = value[2:]
        else:
            value = authextra.get("scram_server_signature")
        expected = _hmac(_server_key(attempt.salted), attempt.auth_message)
        if not hmac.compare_digest(_unb64(value) or b"", expected):
            raise ScramError("the router's ServerSignature is wrong")
