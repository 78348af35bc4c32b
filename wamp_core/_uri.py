"""URIs: validation, match policies, and the well-known URIs of the spec.

Rules from BP/building_blocks.md ("URIs"): components are separated by ``.``,
never contain ``.``, ``#`` or whitespace, and are non-empty -- except in
pattern-based SUBSCRIBE/REGISTER (AP/ap_rpc_pattern_based_registration.md,
AP/ap_pubsub_pattern_based_subscription.md), where an empty component is a
wildcard. The strict rule (components of ``[0-9a-z_]``) is a SHOULD.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Generic, Literal, TypeVar

__all__ = [
    "MATCH_POLICIES",
    "CloseReason",
    "ErrorURI",
    "MatchPolicy",
    "PatternMap",
    "is_reserved_uri",
    "is_valid_uri",
    "wildcard_matches",
]

MatchPolicy = Literal["exact", "prefix", "wildcard"]
MATCH_POLICIES: tuple[MatchPolicy, ...] = ("exact", "prefix", "wildcard")

# The spec's regular expressions (BP/building_blocks.md); the prefix form, which
# allows a trailing empty component, is the one of catalog/src/wamp.fbs.
_LOOSE = re.compile(r"^([^\s\.#]+\.)*([^\s\.#]+)\Z")
_LOOSE_EMPTY = re.compile(r"^(([^\s\.#]+\.)|\.)*([^\s\.#]+)?\Z")
_LOOSE_PREFIX = re.compile(r"^([^\s\.#]+\.)*([^\s\.#]*)\Z")
_STRICT = re.compile(r"^([0-9a-z_]+\.)*([0-9a-z_]+)\Z")
_STRICT_EMPTY = re.compile(r"^(([0-9a-z_]+\.)|\.)*([0-9a-z_]+)?\Z")
_STRICT_PREFIX = re.compile(r"^([0-9a-z_]+\.)*([0-9a-z_]*)\Z")

_RULES = {
    ("exact", False): _LOOSE,
    ("exact", True): _STRICT,
    ("wildcard", False): _LOOSE_EMPTY,
    ("wildcard", True): _STRICT_EMPTY,
    ("prefix", False): _LOOSE_PREFIX,
    ("prefix", True): _STRICT_PREFIX,
}


def is_valid_uri(uri: object, match: str = "exact", *, strict: bool = False) -> bool:
    """Tell whether ``uri`` is a valid URI for the given match policy.

    ``match="exact"`` admits no empty component; ``"wildcard"`` admits empty
    components (each is a wildcard); ``"prefix"`` admits a trailing empty
    component. An unknown policy is never valid. The empty string is never valid.
    """
    rule = _RULES.get((match, strict))
    return rule is not None and isinstance(uri, str) and uri != "" and (rule.match(uri) is not None)


def is_reserved_uri(uri: str) -> bool:
    """Tell whether ``uri`` lies in the ``wamp.`` namespace reserved for the protocol."""
    return uri == "wamp" or uri.startswith("wamp.")


def wildcard_matches(pattern: str, uri: str) -> bool:
    """Tell whether ``uri`` matches a wildcard ``pattern`` (empty component = any one)."""
    pattern_parts = pattern.split(".")
    uri_parts = uri.split(".")
    return len(pattern_parts) == len(uri_parts) and all(
        p in ("", u) for p, u in zip(pattern_parts, uri_parts)
    )


def _wildcard_rank(parts: tuple[str, ...]) -> tuple[int, ...]:
    """The lengths of the literal runs between wildcards, left to right.

    AP/ap_rpc_pattern_based_registration.md: among matching wildcard patterns the
    one with "the longest portion of URI components matched before each
    wildcard" wins, compared left to right -- a lexicographic comparison of
    these run lengths.
    """
    runs = [0]
    for part in parts:
        if part:
            runs[-1] += 1
        else:
            runs.append(0)
    return tuple(runs)


T = TypeVar("T")


class PatternMap(Generic[T]):
    """A table of values keyed by (URI, match policy), with the spec's lookups.

    ``best(uri)`` picks the one entry a CALL is routed to (exact, else the
    longest prefix, else the highest-ranked wildcard); ``matching(uri)`` yields
    every entry an EVENT is delivered for.
    """

    __slots__ = ("_exact", "_prefix", "_wildcard")

    def __init__(self) -> None:
        self._exact: dict[str, T] = {}
        self._prefix: dict[str, T] = {}
        # component count -> pattern -> (rank, parts, value)
        self._wildcard: dict[int, dict[str, tuple[tuple[int, ...], tuple[str, ...], T]]] = {}

    def __len__(self) -> int:
        return (
            len(self._exact)
            + len(self._prefix)
            + sum(len(bucket) for bucket in self._wildcard.values())
        )

    def __iter__(self) -> Iterator[tuple[str, MatchPolicy, T]]:
        for uri, value in self._exact.items():
            yield uri, "exact", value
        for uri, value in self._prefix.items():
            yield uri, "prefix", value
        for bucket in self._wildcard.values():
            for uri, (_, _, value) in bucket.items():
                yield uri, "wildcard", value

    def get(self, uri: str, match: MatchPolicy = "exact") -> T | None:
        """Return the value stored under exactly (``uri``, ``match``), if any."""
        if match == "exact":
            return self._exact.get(uri)
        if match == "prefix":
            return self._prefix.get(uri)
        entry = self._wildcard.get(uri.count("."), {}).get(uri)
        return None if entry is None else entry[2]

    def set(self, uri: str, match: MatchPolicy, value: T) -> None:
        """Store ``value`` under (``uri``, ``match``), replacing any previous one."""
        if match == "exact":
            self._exact[uri] = value
        elif match == "prefix":
            self._prefix[uri] = value
        else:
            parts = tuple(uri.split("."))
            bucket = self._wildcard.setdefault(len(parts) - 1, {})
            bucket[uri] = (_wildcard_rank(parts), parts, value)

    def remove(self, uri: str, match: MatchPolicy = "exact") -> None:
        """Remove the entry under (``uri``, ``match``); a missing one is ignored."""
        if match == "exact":
            self._exact.pop(uri, None)
        elif match == "prefix":
            self._prefix.pop(uri, None)
        else:
            dots = uri.count(".")
            bucket = self._wildcard.get(dots)
            if bucket is not None:
                bucket.pop(uri, None)
                if not bucket:
                    del self._wildcard[dots]

    def best(self, uri: str) -> T | None:
        """The single entry a call to ``uri`` is routed to, or None.

        AP/ap_rpc_pattern_based_registration.md, "Calls matching multiple
        registrations": exact, then longest prefix, then best wildcard.
        """
        value = self._exact.get(uri)
        if value is not None:
            return value
        best_prefix: str | None = None
        for prefix in self._prefix:
            if uri.startswith(prefix) and (best_prefix is None or len(prefix) > len(best_prefix)):
                best_prefix = prefix
        if best_prefix is not None:
            return self._prefix[best_prefix]
        bucket = self._wildcard.get(uri.count("."))
        if not bucket:
            return None
        uri_parts = uri.split(".")
        best_entry: tuple[tuple[int, ...], tuple[str, ...], T] | None = None
        for entry in bucket.values():
            if (best_entry is None or entry[0] > best_entry[0]) and all(
                p in ("", u) for p, u in zip(entry[1], uri_parts)
            ):
                best_entry = entry
        return None if best_entry is None else best_entry[2]

    def matching(self, uri: str) -> list[T]:
        """Every entry that matches ``uri``: exact, then prefixes, then wildcards."""
        found: list[T] = []
        value = self._exact.get(uri)
        if value is not None:
            found.append(value)
        if self._prefix:
            found.extend(v for prefix, v in self._prefix.items() if uri.startswith(prefix))
        if self._wildcard:
            bucket = self._wildcard.get(uri.count("."))
            if bucket:
                uri_parts = uri.split(".")
                found.extend(
                    value
                    for _, parts, value in bucket.values()
                    if all(p in ("", u) for p, u in zip(parts, uri_parts))
                )
        return found


class ErrorURI:
    """Error URIs of BP/uri_reference.md and AP/ap_uris.md."""

    # Basic Profile
    INVALID_URI = "wamp.error.invalid_uri"
    NO_SUCH_PROCEDURE = "wamp.error.no_such_procedure"
    PROCEDURE_ALREADY_EXISTS = "wamp.error.procedure_already_exists"
    NO_SUCH_REGISTRATION = "wamp.error.no_such_registration"
    NO_SUCH_SUBSCRIPTION = "wamp.error.no_such_subscription"
    INVALID_ARGUMENT = "wamp.error.invalid_argument"
    # BP/remote_procedure_call.md spells it "cancelled" once; the URI list,
    # Crossbar and Autobahn use "canceled".
    CANCELED = "wamp.error.canceled"
    PAYLOAD_SIZE_EXCEEDED = "wamp.error.payload_size_exceeded"
    PROTOCOL_VIOLATION = "wamp.error.protocol_violation"
    NOT_AUTHORIZED = "wamp.error.not_authorized"
    AUTHORIZATION_FAILED = "wamp.error.authorization_failed"
    NO_SUCH_REALM = "wamp.error.no_such_realm"
    NO_SUCH_ROLE = "wamp.error.no_such_role"
    # Advanced Profile: authentication
    NO_MATCHING_AUTH_METHOD = "wamp.error.no_matching_auth_method"
    NO_SUCH_PRINCIPAL = "wamp.error.no_such_principal"
    AUTHENTICATION_DENIED = "wamp.error.authentication_denied"
    AUTHENTICATION_FAILED = "wamp.error.authentication_failed"
    AUTHENTICATION_REQUIRED = "wamp.error.authentication_required"
    # Advanced Profile: authorization
    AUTHORIZATION_DENIED = "wamp.error.authorization_denied"
    AUTHORIZATION_REQUIRED = "wamp.error.authorization_required"
    # Advanced Profile: RPC
    TIMEOUT = "wamp.error.timeout"
    OPTION_NOT_ALLOWED = "wamp.error.option_not_allowed"
    OPTION_DISALLOWED_DISCLOSE_ME = "wamp.error.option_disallowed.disclose_me"
    NETWORK_FAILURE = "wamp.error.network_failure"
    UNAVAILABLE = "wamp.error.unavailable"
    NO_AVAILABLE_CALLEE = "wamp.error.no_available_callee"
    FEATURE_NOT_SUPPORTED = "wamp.error.feature_not_supported"
    # Advanced Profile: session meta API
    NO_SUCH_SESSION = "wamp.error.no_such_session"


class CloseReason:
    """GOODBYE / ABORT reasons of BP/uri_reference.md and AP/ap_uris.md."""

    SYSTEM_SHUTDOWN = "wamp.close.system_shutdown"
    CLOSE_REALM = "wamp.close.close_realm"
    GOODBYE_AND_OUT = "wamp.close.goodbye_and_out"
    NORMAL = "wamp.close.normal"
    KILLED = "wamp.close.killed"
