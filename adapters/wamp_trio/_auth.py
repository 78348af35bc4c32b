"""Client-side authentication in one argument (docs/client.md, "Authentication").

Each helper returns a ``ClientAuth``: the HELLO details for one method and the
answer to its CHALLENGE, built on the core's sans-IO pieces
(``wamp_core.wampcra_signature``, ``CryptosignKey``, ``ScramClient``). It is a
mapping of keyword arguments for ``connect()`` and ``open_session()``::

    async with connect(url, "realm1", **ticket_auth("alice-ticket", authid="alice")):
        ...

The keys are ``authmethods``, ``authextra``, ``on_challenge``, ``authid`` when
the helper was given one, and for WAMP-SCRAM ``on_join``, which checks the
router's signature in WELCOME (mutual authentication) and ends the session when
it is wrong (``connect()`` only: ``open_session()`` takes no ``on_join``; call
``auth.welcome(session.details)`` yourself there).

Per-attempt values (the SCRAM client nonce, the cryptosign router challenge)
live in the ``authextra`` dict, which the helper renews in place once an
attempt has used them, so a reconnecting session never reuses them.
``hello(authid)`` starts an attempt explicitly and returns the HELLO keywords;
``welcome(details)`` checks a WELCOME.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import wamp_core
from wamp_core import ChallengeReceived, CryptosignKey, ScramClient, wampcra_signature
from wamp_core._scram import (
    MAX_ARGON2_MEMORY,
    MAX_ITERATIONS,
    MIN_ARGON2_MEMORY,
    MIN_ARGON2_WORK,
    MIN_PBKDF2_ITERATIONS,
)

if TYPE_CHECKING:
    from ._client import Session

__all__ = [
    "ClientAuth",
    "CryptosignAuth",
    "ScramAuth",
    "TicketAuth",
    "WampCraAuth",
    "cryptosign_auth",
    "scram_auth",
    "ticket_auth",
    "wampcra_auth",
]

Answer = str | tuple[str, dict[str, Any]]
"""What ``on_challenge`` returns: a signature, or (signature, AUTHENTICATE.Extra)."""


class ClientAuth(Mapping[str, Any]):
    """How a client authenticates with one method (see the module docstring).

    ``authmethods`` (HELLO.Details.authmethods), ``authid`` (None: the one given
    to ``connect()``), ``authextra`` (HELLO.Details.authextra, renewed in place
    between attempts) and ``on_challenge(challenge)``, which raises
    ``ValueError`` (``wamp_core.ScramError`` for SCRAM) when the CHALLENGE
    breaks the method's rules: the join is then aborted.
    """

    def __init__(self, authmethod: str, *, authid: str | None) -> None:
        if authid is not None and not isinstance(authid, str):
            raise TypeError("authid must be a string")
        self.authmethods: list[str] = [authmethod]
        self.authid = authid
        self.authextra: dict[str, Any] = {}

    # -- the mapping of keyword arguments for connect() -------------------------------

    def _keys(self) -> list[str]:
        keys = ["authmethods", "authextra", "on_challenge"]
        if self.authid is not None:
            keys.insert(1, "authid")
        return keys

    def __getitem__(self, key: str) -> Any:
        if key not in self._keys():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def __repr__(self) -> str:
        return f"<{type(self).__name__} authmethods={self.authmethods} authid={self.authid!r}>"

    # -- the protocol ---------------------------------------------------------------

    def hello(self, authid: str | None = None) -> dict[str, Any]:
        """Start a join attempt: the ``authmethods``, ``authid``, ``authextra`` for HELLO.

        ``authid`` is used when the helper was given none.
        """
        self._renew()
        return {
            "authmethods": list(self.authmethods),
            "authid": self.authid if self.authid is not None else authid,
            "authextra": dict(self.authextra) or None,
        }

    def on_challenge(self, challenge: ChallengeReceived) -> Answer:
        """Answer a CHALLENGE (``connect(on_challenge=...)``)."""
        if challenge.authmethod not in self.authmethods:
            raise ValueError(f"the router challenged with {challenge.authmethod!r}, not offered")
        return self._answer(challenge)

    def welcome(self, details: Mapping[str, Any]) -> None:
        """Check WELCOME.Details; raises when the router did not prove itself."""

    def _answer(self, challenge: ChallengeReceived) -> Answer:
        raise NotImplementedError

    def _renew(self) -> None:
        """Renew the per-attempt values in ``authextra`` (in place)."""


class TicketAuth(ClientAuth):
    """``ticket``: the signature is the ticket (AP/authentication_ticket.md)."""

    def __init__(self, ticket: str, *, authid: str | None = None) -> None:
        if not isinstance(ticket, str):
            raise TypeError("the ticket must be a string")
        super().__init__("ticket", authid=authid)
        self._ticket = ticket

    def _answer(self, challenge: ChallengeReceived) -> Answer:
        return self._ticket


class WampCraAuth(ClientAuth):
    """``wampcra``, plain or salted: the salt parameters come in the CHALLENGE.

    ``max_iterations`` bounds the PBKDF2 work a router may ask for.
    """

    def __init__(
        self, secret: str | bytes, *, authid: str | None = None, max_iterations: int = 1_000_000
    ) -> None:
        super().__init__("wampcra", authid=authid)
        self._secret = secret
        self.max_iterations = max_iterations

    def _answer(self, challenge: ChallengeReceived) -> Answer:
        return wampcra_signature(self._secret, challenge.extra, max_iterations=self.max_iterations)


class CryptosignAuth(ClientAuth):
    """``cryptosign`` (Ed25519), with router authentication when ``trusted_router_keys``
    is given: HELLO then carries a fresh challenge, and the CHALLENGE must carry
    its signature by one of those keys (hex public keys).

    ``channel_binding`` (``tls-unique``, ``tls-exporter``) needs ``channel_id``,
    this connection's cryptosign channel ID (``wamp_core.cryptosign_channel_id``
    of the TLS binding data); a router that answers unbound is refused.
    """

    def __init__(
        self,
        private_key: CryptosignKey | bytes | str,
        *,
        authid: str | None = None,
        channel_binding: str | None = None,
        channel_id: bytes | None = None,
        trusted_router_keys: Iterable[str] = (),
    ) -> None:
        super().__init__("cryptosign", authid=authid)
        self.key = private_key if isinstance(private_key, CryptosignKey) else (
            CryptosignKey(private_key)
        )  # fmt: skip
        self.channel_binding = channel_binding
        self.channel_id = channel_id
        if isinstance(trusted_router_keys, str):
            trusted_router_keys = (trusted_router_keys,)
        self.trusted_router_keys = tuple(k.lower() for k in trusted_router_keys)
        self._router_challenge: str | None = None
        self._renew()

    @property
    def public_key_hex(self) -> str:
        """The client's public key (what the router's principal lists)."""
        return self.key.public_key_hex

    def _renew(self) -> None:
        self._router_challenge = secrets.token_hex(32) if self.trusted_router_keys else None
        extra = self.key.hello_authextra(
            channel_binding=self.channel_binding, challenge=self._router_challenge
        )
        self.authextra.clear()
        self.authextra.update(extra)

    def _answer(self, challenge: ChallengeReceived) -> Answer:
        try:
            return self.key.respond(
                challenge.extra,
                channel_binding=self.channel_binding,
                channel_id=self.channel_id,
                router_challenge=self._router_challenge,
                trusted_router_keys=self.trusted_router_keys,
            )
        finally:
            # The HELLO that carried the router challenge is gone: the next
            # attempt (a reconnection) gets a new one.
            self._renew()


class ScramAuth(ClientAuth):
    """WAMP-SCRAM, ``spelling`` ``"wamp-scram"`` (the spec) or ``"scram"``
    (Autobahn, Crossbar); see docs/authentication.md. The authid is part of the
    proof, so it is given here. ``min_*`` and ``max_*`` are ``ScramClient``'s
    bounds on the KDF costs a router may ask for.
    """

    def __init__(
        self,
        password: str,
        *,
        authid: str,
        spelling: str = "wamp-scram",
        min_pbkdf2_iterations: int = MIN_PBKDF2_ITERATIONS,
        min_argon2_memory: int = MIN_ARGON2_MEMORY,
        min_argon2_work: int = MIN_ARGON2_WORK,
        max_iterations: int = MAX_ITERATIONS,
        max_memory: int = MAX_ARGON2_MEMORY,
    ) -> None:
        if not isinstance(authid, str):
            raise TypeError("WAMP-SCRAM needs the authid")
        if spelling not in wamp_core.SCRAM_AUTHMETHODS:
            raise ValueError(f"spelling must be one of {wamp_core.SCRAM_AUTHMETHODS}")
        super().__init__(spelling, authid=authid)
        self.client = ScramClient(
            authid,
            password,
            authmethods=(spelling,),
            min_pbkdf2_iterations=min_pbkdf2_iterations,
            min_argon2_memory=min_argon2_memory,
            min_argon2_work=min_argon2_work,
            max_iterations=max_iterations,
            max_memory=max_memory,
        )
        self.authid = self.client.authid  # SASLprep'ed, as the proof uses it
        self._renew()

    def _keys(self) -> list[str]:
        return [*super()._keys(), "on_join"]

    def _renew(self) -> None:
        extra = self.client.hello()["authextra"]
        self.authextra.clear()
        self.authextra.update(extra)

    def _answer(self, challenge: ChallengeReceived) -> Answer:
        return self.client.challenge(challenge.authmethod, challenge.extra)

    def welcome(self, details: Mapping[str, Any]) -> None:
        """Check the ServerSignature; raises ``wamp_core.ScramError`` when it is wrong.

        Starts the next attempt (a new client nonce) either way.
        """
        try:
            self.client.welcome(dict(details))
        finally:
            self._renew()

    def on_join(self, session: Session) -> None:
        """``connect(on_join=...)``: ``welcome(session.details)``."""
        self.welcome(session.details)


def ticket_auth(ticket: str, *, authid: str | None = None) -> TicketAuth:
    """``ticket`` authentication with ``ticket``."""
    return TicketAuth(ticket, authid=authid)


def wampcra_auth(
    secret: str | bytes, *, authid: str | None = None, max_iterations: int = 1_000_000
) -> WampCraAuth:
    """``wampcra`` with ``secret`` (the password when the router's credential is salted)."""
    return WampCraAuth(secret, authid=authid, max_iterations=max_iterations)


def cryptosign_auth(
    private_key_seed_hex: str | bytes | CryptosignKey,
    *,
    authid: str | None = None,
    channel_binding: str | None = None,
    channel_id: bytes | None = None,
    trusted_router_keys: Iterable[str] = (),
) -> CryptosignAuth:
    """``cryptosign`` with the Ed25519 key of this 32-byte seed (64 hex digits)."""
    return CryptosignAuth(
        private_key_seed_hex,
        authid=authid,
        channel_binding=channel_binding,
        channel_id=channel_id,
        trusted_router_keys=trusted_router_keys,
    )


def scram_auth(
    password: str,
    *,
    authid: str,
    spelling: str = "wamp-scram",
    min_pbkdf2_iterations: int = MIN_PBKDF2_ITERATIONS,
    min_argon2_memory: int = MIN_ARGON2_MEMORY,
    min_argon2_work: int = MIN_ARGON2_WORK,
    max_iterations: int = MAX_ITERATIONS,
    max_memory: int = MAX_ARGON2_MEMORY,
) -> ScramAuth:
    """WAMP-SCRAM as ``authid`` with ``password``, in ``spelling`` (``"scram"`` for
    Crossbar); ``min_*``/``max_*``: the KDF costs accepted (see ``ScramClient``)."""
    return ScramAuth(
        password,
        authid=authid,
        spelling=spelling,
        min_pbkdf2_iterations=min_pbkdf2_iterations,
        min_argon2_memory=min_argon2_memory,
        min_argon2_work=min_argon2_work,
        max_iterations=max_iterations,
        max_memory=max_memory,
    )
