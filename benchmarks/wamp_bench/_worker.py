"""Worker processes: each runs sessions in one role -- the measured roles over
``ws``/``rs``/``unix`` in ``_lean``'s selector loop, the others under ``trio.run``.

The parent talks to a worker over a duplex pipe, in tuples:

- worker -> parent ``("ready", info)`` once its sessions are joined (and have
  registered or subscribed);
- parent -> worker ``("go", start, warm, end)`` (``time.monotonic_ns()`` values,
  comparable across processes on one machine): measure, then send
  ``("result", figures)``;
- parent -> worker ``("stop",)``: leave, send ``("done", figures)`` and exit;
- worker -> parent ``("error", text)`` when it fails, then it exits.

Every worker also has its own deadline (``WorkerSpec.deadline``), so a stuck
router or a lost parent cannot keep it alive.
"""

from __future__ import annotations

import contextlib
import dataclasses
import resource
import time
from collections.abc import Callable
from multiprocessing.connection import Connection as Pipe
from typing import Any

import trio

import wamp_core
from wamp_trio import TransportClosed

from ._lean import lean_main, runs_lean
from ._session import BenchError, Connection, run_session
from ._stats import Recorder

__all__ = ["MAX_ERRORS", "WorkerSpec", "raise_fd_limit", "worker_main"]

MAX_ERRORS = 100
"""A caller or publisher stops issuing after this many ERRORs."""

CONNECT_CONCURRENCY = 64
"""Connections one worker opens at a time."""

clock = time.monotonic_ns


@dataclasses.dataclass(frozen=True)
class WorkerSpec:
    """What one worker process does.

    ``role`` is ``callee``, ``caller``, ``publisher``, ``subscriber``, ``idle``
    or ``echo`` (the echo server). ``uri`` is the procedure or topic,
    ``sessions`` the number of sessions (subscriber, idle), ``outstanding`` the
    requests in flight (caller, publisher), ``count`` > 0 makes a caller
    sequential and count-based (after ``warmup_calls``), ``shared`` registers
    with ``invoke=roundrobin``. ``deadline`` bounds the worker's whole life,
    ``connect_timeout`` each connection, ``drain`` the wait for answers after
    the measurement window.
    """

    role: str
    name: str
    url: str = ""
    serializer: str = "json"
    realm: str = "realm1"
    uri: str = ""
    payload: int = 100
    sessions: int = 1
    outstanding: int = 1
    count: int = 0
    warmup_calls: int = 0
    shared: bool = False
    deadline: float = 60.0
    connect_timeout: float = 30.0
    drain: float = 5.0
    host: str = "127.0.0.1"


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def describe(exc: BaseException) -> str:
    """One line for ``exc`` (the innermost exception of nested one-member groups)."""
    inner: list[BaseException] = list(getattr(exc, "exceptions", None) or ())
    if len(inner) == 1:
        return describe(inner[0])
    if inner:
        return "; ".join(describe(one) for one in inner)
    if isinstance(exc, trio.TooSlowError):
        return "the worker's deadline passed (a stuck router?)"
    text = str(exc)
    cause = exc.__cause__
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text}: {cause}"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def trio_deadline(monotonic_ns: int) -> float:
    """The trio clock's reading when ``time.monotonic_ns()`` reaches ``monotonic_ns``."""
    return trio.current_time() + (monotonic_ns - clock()) / 1e9


class _Control:
    """The worker's end of the pipe."""

    def __init__(self, pipe: Pipe) -> None:
        self.pipe = pipe

    def send(self, *message: Any) -> None:
        self.pipe.send(message)

    async def receive(self) -> tuple[Any, ...]:
        while not self.pipe.poll():
            await trio.lowlevel.wait_readable(self.pipe)
        try:
            message: tuple[Any, ...] = self.pipe.recv()
        except EOFError:
            return ("stop",)  # the parent is gone
        return message


def worker_main(pipe: Pipe, spec: WorkerSpec) -> None:
    """The worker process: run ``spec``'s role, reporting on ``pipe``."""
    raise_fd_limit()
    if runs_lean(spec.role, spec.url):
        lean_main(pipe, spec, describe)
        return
    control = _Control(pipe)
    try:
        trio.run(_run, control, spec)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            control.send("error", describe(exc))
    finally:
        pipe.close()


async def _run(control: _Control, spec: WorkerSpec) -> None:
    role = _ROLES[spec.role](spec)
    with trio.fail_after(spec.deadline):
        # The sessions live in the outer nursery; what uses them, in the inner one.
        async with trio.open_nursery() as sessions:
            role.sessions = sessions
            try:
                async with trio.open_nursery() as nursery:
                    control.send("ready", await role.setup(nursery))
                    while True:
                        message = await control.receive()
                        if message[0] == "stop":
                            break
                        if message[0] == "go":
                            nursery.start_soon(_measure, role, control, *message[1:])
                    nursery.cancel_scope.cancel()
            finally:
                role.stop.set()  # every session leaves (bounded) and closes
        control.send("done", role.final())


async def _measure(role: _Role, control: _Control, start: int, warm: int, end: int) -> None:
    await trio.sleep_until(trio_deadline(start))
    control.send("result", await role.run(warm, end))


async def _connect_many(
    spec: WorkerSpec, count: int, sessions: trio.Nursery, stop: trio.Event
) -> tuple[list[Connection], list[str]]:
    """Up to ``count`` joined sessions running in ``sessions`` until ``stop``,
    opened ``CONNECT_CONCURRENCY`` at a time; the sessions and the errors of the
    attempts that failed."""
    limiter = trio.CapacityLimiter(CONNECT_CONCURRENCY)
    connections: list[Connection] = []
    errors: list[str] = []

    async def one() -> None:
        async with limiter:
            try:
                with trio.fail_after(spec.connect_timeout):
                    connection = await sessions.start(
                        run_session, spec.url, spec.serializer, spec.realm, stop
                    )
            except Exception as exc:
                errors.append(describe(exc))
                return
            connections.append(connection)

    async with trio.open_nursery() as nursery:
        for _ in range(count):
            nursery.start_soon(one)
    return connections, errors


class _Role:
    """One kind of worker: ``setup`` (-> ready info), ``run`` (-> result),
    ``final`` (-> done figures)."""

    sessions: trio.Nursery  # where the sessions run (set before setup)

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.connections: list[Connection] = []
        self.stop = trio.Event()

    async def setup(self, nursery: trio.Nursery) -> dict[str, Any]:
        raise NotImplementedError

    async def run(self, warm: int, end: int) -> dict[str, Any]:
        return {}

    def final(self) -> dict[str, Any]:
        return {}

    async def _connect_all(self, count: int) -> None:
        self.connections, errors = await _connect_many(self.spec, count, self.sessions, self.stop)
        if errors:
            raise BenchError(f"{len(errors)} of {count} connections failed: {errors[0]}")

    @property
    def payload(self) -> str:
        return "x" * self.spec.payload


class _Callee(_Role):
    """One session answering every INVOCATION with the call's arguments."""

    invocations = 0

    async def setup(self, nursery: trio.Nursery) -> dict[str, Any]:
        await self._connect_all(1)
        (connection,) = self.connections
        options = {"invoke": "roundrobin"} if self.spec.shared else None
        await connection.request(connection.session.register(self.spec.uri, options))
        nursery.start_soon(self._serve, connection)
        return {}

    async def _serve(self, connection: Connection) -> None:
        session, receive = connection.session, connection.transport.receive
        invocation = wamp_core.InvocationReceived
        while True:
            for event in session.receive_data(await receive()):
                if isinstance(event, invocation):
                    session.yield_result(event.request_id, event.args)
                    self.invocations += 1
            await connection.flush()

    def final(self) -> dict[str, Any]:
        return {"invocations": self.invocations}


class _Caller(_Role):
    """One session calling: ``outstanding`` calls in flight during the window,
    or (``count`` > 0) ``warmup_calls`` + ``count`` sequential calls."""

    async def setup(self, nursery: trio.Nursery) -> dict[str, Any]:
        await self._connect_all(1)
        return {}

    async def run(self, warm: int, end: int) -> dict[str, Any]:
        (connection,) = self.connections
        args = [self.payload]
        session, uri = connection.session, self.spec.uri
        if self.spec.count > 0:
            return await _sequential(connection, uri, args, self.spec)
        return await _windowed(
            connection,
            lambda: session.call(uri, args),
            wamp_core.ResultReceived,
            self.spec,
            warm=warm,
            end=end,
        )


class _Publisher(_Role):
    """One session publishing with acknowledgement, at most ``outstanding``
    unacknowledged; each EVENT's Args are ``[payload, monotonic_ns at publish]``."""

    async def setup(self, nursery: trio.Nursery) -> dict[str, Any]:
        await self._connect_all(1)
        return {}

    async def run(self, warm: int, end: int) -> dict[str, Any]:
        (connection,) = self.connections
        session, uri, payload = connection.session, self.spec.uri, self.payload
        return await _windowed(
            connection,
            lambda: session.publish(uri, [payload, clock()], acknowledge=True),
            wamp_core.PublishSucceeded,
            self.spec,
            warm=warm,
            end=end,
        )


class _Subscriber(_Role):
    """``sessions`` sessions subscribed to ``uri``, counting the EVENTs received
    in the window and their delivery latency."""

    async def setup(self, nursery: trio.Nursery) -> dict[str, Any]:
        await self._connect_all(self.spec.sessions)
        async with trio.open_nursery() as subscribing:
            for connection in self.connections:
                subscribing.start_soon(self._subscribe, connection)
        return {"sessions": len(self.connections)}

    async def _subscribe(self, connection: Connection) -> None:
        with trio.fail_after(self.spec.connect_timeout):
            await connection.request(connection.session.subscribe(self.spec.uri))

    async def run(self, warm: int, end: int) -> dict[str, Any]:
        recorder = Recorder()
        counts = [0]
        malformed = [0]

        async def receive(connection: Connection) -> None:
            session, transport = connection.session, connection.transport
            kind = wamp_core.EventReceived
            while True:
                data = await transport.receive()
                now = clock()
                if now >= end:
                    return
                for event in session.receive_data(data):
                    if not isinstance(event, kind) or now < warm:
                        continue
                    args = event.args
                    if not args or len(args) < 2 or type(args[1]) is not int:
                        malformed[0] += 1
                        continue
                    counts[0] += 1
                    recorder.add(now - args[1])

        with trio.move_on_at(trio_deadline(end)):
            async with trio.open_nursery() as nursery:
                for connection in self.connections:
                    nursery.start_soon(receive, connection)
        return {
            "events": counts[0],
            "malformed": malformed[0],
            "samples": recorder.samples,
        }


class _Idle(_Role):
    """``sessions`` joined sessions that only hold on (and answer the router)."""

    lost = 0

    async def setup(self, nursery: trio.Nursery) -> dict[str, Any]:
        started = time.monotonic()
        self.connections, errors = await _connect_many(
            self.spec, self.spec.sessions, self.sessions, self.stop
        )
        seconds = time.monotonic() - started
        for connection in self.connections:
            nursery.start_soon(self._hold, connection)
        return {
            "connected": len(self.connections),
            "failed": len(errors),
            "errors": errors[:20],
            "seconds": seconds,
            "fd_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        }

    async def _hold(self, connection: Connection) -> None:
        try:
            while connection.session.state is wamp_core.ClientState.ESTABLISHED:
                await connection.events()
                await connection.flush()
        except (TransportClosed, wamp_core.ProtocolError):
            pass
        self.lost += 1

    def final(self) -> dict[str, Any]:
        return {"lost": self.lost}


class _Echo(_Role):
    """The echo server (``wamp_bench._echo``) on a free port."""

    async def setup(self, nursery: trio.Nursery) -> dict[str, Any]:
        from ._echo import serve_echo  # noqa: PLC0415

        urls: dict[str, str] = await nursery.start(serve_echo, self.spec.host, 0)
        return {"urls": urls}


async def _sequential(
    connection: Connection, uri: str, args: list[Any], spec: WorkerSpec
) -> dict[str, Any]:
    """``spec.warmup_calls`` + ``spec.count`` calls, one at a time."""
    session, flush, events = connection.session, connection.flush, connection.events
    recorder = Recorder()
    result_kind, error_kind = wamp_core.ResultReceived, wamp_core.ErrorReceived
    first = last = clock()
    for index in range(spec.warmup_calls + spec.count):
        if index == spec.warmup_calls:
            first = clock()
        started = clock()
        request = session.call(uri, args)
        await flush()
        answered = False
        while not answered:
            for event in await events():
                if isinstance(event, result_kind) and event.request_id == request:
                    answered = True
                elif isinstance(event, error_kind) and event.request_id == request:
                    raise BenchError(f"the call failed: {event.error}")
        last = clock()
        if index >= spec.warmup_calls:
            recorder.add(last - started)
    return {
        "completed": spec.count,
        "errors": 0,
        "unfinished": 0,
        "seconds": (last - first) / 1e9,
        "samples": recorder.samples,
    }


async def _windowed(
    connection: Connection,
    issue: Callable[[], int],
    answer: type[wamp_core.SessionEvent],
    spec: WorkerSpec,
    *,
    warm: int,
    end: int,
) -> dict[str, Any]:
    """Keep ``spec.outstanding`` requests in flight until ``end``; count the
    answers (of type ``answer``) that arrive in [``warm``, ``end``) and their
    latency. Waits at most ``spec.drain`` s after ``end`` for the rest."""
    session, receive, flush = connection.session, connection.transport.receive, connection.flush
    recorder = Recorder()
    sent: dict[int, int] = {}
    completed = errors = 0
    first_error: str | None = None
    error_kind = wamp_core.ErrorReceived
    for _ in range(spec.outstanding):
        sent[issue()] = clock()
    await flush()
    issuing = True
    with trio.move_on_at(trio_deadline(end) + spec.drain):
        while sent:
            data = await receive()
            now = clock()
            if now >= end:
                issuing = False
            for event in session.receive_data(data):
                if isinstance(event, answer):
                    started = sent.pop(getattr(event, "request_id", 0), None)
                    if started is None:
                        continue
                    if issuing and now >= warm:
                        completed += 1
                        recorder.add(now - started)
                elif isinstance(event, error_kind):
                    if sent.pop(event.request_id, None) is None:
                        continue
                    errors += 1
                    first_error = first_error or event.error
                    if errors >= MAX_ERRORS:
                        issuing = False
                else:
                    continue
                if issuing:
                    sent[issue()] = clock()
            await flush()
    return {
        "completed": completed,
        "errors": errors,
        "first_error": first_error,
        "unfinished": len(sent),
        "seconds": (end - warm) / 1e9,
        "samples": recorder.samples,
    }


_ROLES: dict[str, Callable[[WorkerSpec], _Role]] = {
    "callee": _Callee,
    "caller": _Caller,
    "publisher": _Publisher,
    "subscriber": _Subscriber,
    "idle": _Idle,
    "echo": _Echo,
}
