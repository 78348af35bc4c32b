"""Scenarios, the context they run in, and the runner.

A scenario is an async function taking a ``Context``; ``@scenario(...)``
registers it with the spec reference it checks and the router feature it needs.
It passes when it returns, fails when it raises ``Failure`` (or anything else
unexpected: a crash, a timeout, a refused connection), and is skipped when it
raises ``Skip`` -- always with a reason.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from fnmatch import fnmatchcase
from typing import Any, NoReturn
from urllib.parse import urlsplit

import trio

from wamp_core import Welcome, get_serializer
from wamp_trio._connect import open_transport
from wamp_trio._transport import TransportClosed

from ._peer import Failure, Peer, Skip

__all__ = [
    "SCENARIOS",
    "Context",
    "Outcome",
    "Result",
    "Scenario",
    "Target",
    "run_suite",
    "scenario",
    "transport_kind",
]

ScenarioFunction = Callable[["Context"], Awaitable[None]]

TRANSPORT_KINDS = ("websocket", "rawsocket", "longpoll")
_SCHEME_KINDS = {
    "ws": "websocket",
    "wss": "websocket",
    "rs": "rawsocket",
    "rss": "rawsocket",
    "unix": "rawsocket",
    "http": "longpoll",
    "https": "longpoll",
}


def transport_kind(url: str) -> str:
    """``websocket``, ``rawsocket`` or ``longpoll`` for a router URL; ValueError
    for an unknown scheme."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in _SCHEME_KINDS:
        raise ValueError(
            f"unknown transport scheme {scheme!r} in {url!r}; use one of: "
            + ", ".join(f"{s}://" for s in _SCHEME_KINDS)
        )
    return _SCHEME_KINDS[scheme]


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One check. ``id`` is dotted (``rpc.call.no_such_procedure``); ``spec``
    names the spec file and section (``BP/rpc.md, Calling and Invocations``);
    ``feature`` is the ``(router role, feature)`` the router must announce in
    WELCOME for the scenario to apply; ``transport`` the transport kind it
    needs (one of ``TRANSPORT_KINDS``; None: the main URL's, whatever it is)."""

    id: str
    title: str
    spec: str
    function: ScenarioFunction
    feature: tuple[str, str] | None = None
    transport: str | None = None


SCENARIOS: dict[str, Scenario] = {}
"""Every registered scenario by ID, in registration order."""


def scenario(
    id: str,
    title: str,
    spec: str,
    *,
    feature: tuple[str, str] | None = None,
    transport: str | None = None,
) -> Callable[[ScenarioFunction], ScenarioFunction]:
    """Register the decorated function as a scenario (see ``Scenario``)."""
    if transport is not None and transport not in TRANSPORT_KINDS:
        raise ValueError(f"unknown transport kind {transport!r}")

    def register(function: ScenarioFunction) -> ScenarioFunction:
        if id in SCENARIOS:
            raise ValueError(f"duplicate scenario {id!r}")
        SCENARIOS[id] = Scenario(id, title, spec, function, feature, transport)
        return function

    return register


@dataclasses.dataclass(frozen=True)
class Target:
    """The router under test: its URL, the other URLs of the same router by
    transport kind (for the transport scenarios), the realm, the serializer,
    the per-message timeout (seconds) and credentials by method
    (``{"ticket": {"authid": ..., "secret": ...}}``, for the auth scenarios)."""

    url: str
    realm: str = "realm1"
    serializer: str = "json"
    timeout: float = 5.0
    urls: dict[str, str] = dataclasses.field(default_factory=dict)
    credentials: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)

    def url_for(self, kind: str) -> str | None:
        """The URL serving transport ``kind``, if known."""
        if transport_kind(self.url) == kind:
            return self.url
        return self.urls.get(kind)


class Context:
    """What a scenario works with: peers on the router under test, what the
    router announced, and the verdict helpers."""

    def __init__(self, target: Target, welcome: Welcome, stack: contextlib.AsyncExitStack) -> None:
        self.target = target
        self.realm = target.realm
        self.timeout = target.timeout
        self.router_roles: dict[str, Any] = welcome.details.get("roles", {})
        """The ``roles`` the router announced in a WELCOME before the run."""
        self._stack = stack
        self._count = 0

    # -- verdicts ---------------------------------------------------------------

    @staticmethod
    def fail(message: str) -> NoReturn:
        """Fail the scenario."""
        raise Failure(message)

    @staticmethod
    def skip(reason: str) -> NoReturn:
        """Skip the scenario (it does not apply to this router)."""
        raise Skip(reason)

    @staticmethod
    def check(condition: object, message: str) -> None:
        """Fail with ``message`` unless ``condition`` holds."""
        if not condition:
            raise Failure(message)

    def announces(self, role: str, feature: str) -> bool:
        """Whether the router announced ``roles.<role>.features.<feature>``."""
        details = self.router_roles.get(role)
        features = details.get("features") if isinstance(details, dict) else None
        return isinstance(features, dict) and features.get(feature) is True

    def require(self, role: str, feature: str) -> None:
        """Skip unless the router announced the feature."""
        if not self.announces(role, feature):
            self.skip(f"the router does not announce {role} feature {feature!r}")

    # -- peers ------------------------------------------------------------------

    async def connect(
        self, *, serializer: str | None = None, url: str | None = None, name: str | None = None
    ) -> Peer:
        """A new transport connection (not joined), closed when the scenario ends."""
        self._count += 1
        codec = get_serializer(serializer or self.target.serializer)
        where = url or self.target.url
        try:
            with trio.fail_after(self.timeout):
                transport = await self._stack.enter_async_context(open_transport(where, codec))
        except (OSError, TransportClosed, trio.TooSlowError) as exc:
            raise Failure(f"cannot connect to {where} ({codec.subprotocol}): {exc}") from None
        peer = Peer(transport, codec, name or f"peer{self._count}", self.timeout)
        self._stack.push_async_callback(peer.aclose)
        return peer

    async def peer(
        self,
        *,
        roles: dict[str, Any] | None = None,
        serializer: str | None = None,
        name: str | None = None,
        **details: Any,
    ) -> Peer:
        """A new connection joined to the realm (HELLO ``details`` as given)."""
        peer = await self.connect(serializer=serializer, name=name)
        await peer.join(self.realm, roles, **details)
        return peer

    async def peers(self, count: int, **kwargs: Any) -> list[Peer]:
        """``count`` joined peers."""
        return [await self.peer(**kwargs) for _ in range(count)]


class Outcome(enum.Enum):
    """A scenario's verdict."""

    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"


@dataclasses.dataclass(frozen=True)
class Result:
    """One scenario's verdict, the reason (failures and skips) and its duration."""

    scenario: Scenario
    outcome: Outcome
    reason: str = ""
    seconds: float = 0.0


async def _probe(target: Target) -> Welcome:
    """Join once to learn what the router announces."""
    codec = get_serializer(target.serializer)
    with trio.fail_after(target.timeout * 2):
        async with open_transport(target.url, codec) as transport:
            peer = Peer(transport, codec, "probe", target.timeout)
            welcome = await peer.join(target.realm)
            with contextlib.suppress(Failure):
                await peer.leave()
            return welcome


async def run_one(target: Target, welcome: Welcome, item: Scenario) -> Result:
    """Run one scenario in its own connections; never raises."""
    started = time.monotonic()

    def result(outcome: Outcome, reason: str = "") -> Result:
        return Result(item, outcome, reason, time.monotonic() - started)

    if item.feature is not None:
        role, feature = item.feature
        details = welcome.details.get("roles", {}).get(role)
        features = details.get("features") if isinstance(details, dict) else None
        if not (isinstance(features, dict) and features.get(feature) is True):
            return result(Outcome.SKIP, f"the router does not announce {role} feature {feature!r}")
    if item.transport is not None and target.url_for(item.transport) is None:
        return result(Outcome.SKIP, f"no {item.transport} URL given (--transport)")
    try:
        # Generous: a scenario waits for several messages, each within the timeout.
        with trio.fail_after(target.timeout * 6):
            async with contextlib.AsyncExitStack() as stack:
                await item.function(Context(target, welcome, stack))
    except Failure as exc:
        return result(Outcome.FAIL, str(exc))
    except Skip as exc:
        return result(Outcome.SKIP, str(exc))
    except trio.TooSlowError:
        return result(Outcome.FAIL, f"did not finish within {target.timeout * 6:g} s")
    except Exception as exc:  # a crash of the scenario against this router is a failure
        return result(Outcome.FAIL, f"{type(exc).__name__}: {exc}")
    return result(Outcome.PASS)


def select(patterns: Sequence[str] = ()) -> list[Scenario]:
    """The scenarios whose ID matches one of ``patterns`` (shell-style, or a
    plain prefix: ``rpc`` selects ``rpc.*``); all without patterns."""
    _load()
    if not patterns:
        return list(SCENARIOS.values())
    return [
        item
        for item in SCENARIOS.values()
        if any(
            fnmatchcase(item.id, pattern)
            or item.id == pattern
            or item.id.startswith(pattern.rstrip(".") + ".")
            for pattern in patterns
        )
    ]


async def run_suite(
    target: Target,
    scenarios: Iterable[Scenario] | None = None,
    *,
    progress: Callable[[int, int, Result], None] | None = None,
) -> list[Result]:
    """Run ``scenarios`` (default: all) one after the other against ``target``.

    Raises ``Failure`` when the router cannot be joined at all (nothing could
    be checked). ``progress(index, total, result)`` is told after each one.
    """
    chosen = select() if scenarios is None else list(scenarios)
    try:
        welcome = await _probe(target)
    except trio.TooSlowError:
        raise Failure(f"{target.url}: no WELCOME within {target.timeout * 2:g} s") from None
    except (OSError, TransportClosed, ValueError) as exc:
        raise Failure(f"cannot join realm {target.realm!r} at {target.url}: {exc}") from None
    results = []
    for index, item in enumerate(chosen, 1):
        outcome = await run_one(target, welcome, item)
        results.append(outcome)
        if progress is not None:
            progress(index, len(chosen), outcome)
    return results


def _load() -> None:
    """Import the scenario catalogue (registration happens at import)."""
    from . import scenarios  # noqa: F401, PLC0415
