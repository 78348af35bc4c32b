"""Run a ``wamp_core.Router`` over message transports, and serve it on sockets.

``RouterHost.handle(transport)`` runs one connection: a reader task feeding the
router, and a writer task draining the connection's bounded outbound queue.
Every router call is followed by a dispatch of ``router.data_to_send()`` to the
queues of the connections concerned, with no await in between, so a delivery
never waits on anyone's socket.

Throughput: the reader feeds every message its transport already holds
(``receive_buffered()``, optional) before it yields to the scheduler, and the
writer hands everything queued by then to the transport at once
(``send_many()``, optional: one socket write for many messages; a batched
serializer joins them into one transport message instead).

Latency: when the reader has fed that batch, it writes what the batch queued
for each connection straight to that connection's socket if the connection's
writer is idle (``try_send_many()``, optional: a write that never waits), so a
message crosses the router without waking a second task. Whatever the socket
does not take at once is left to the writer, in order.

Backpressure (see docs/router.md): every outbound queue holds ``queue_size``
messages. A full queue is first written out directly where its socket takes
it: one read of a producer can bring a consumer more than ``queue_size``
messages, however fast that consumer reads. If it is still full, a message that
must not be lost and that another client's input produced (an INVOCATION, ...)
is queued all the same (under ``"drop"``, once no EVENT is left to evict), up
to ``4 * queue_size``, and that client's reader
stops until the queue has drained below ``queue_size`` (``_make_room``,
``_hold``): the producer is throttled by its consumer's writes, and a consumer
that reads nothing is closed by the stalled-writer check (below), which
releases it. An EVENT, an answer to the consumer's own requests, or a message
its own input produced, meets the policy instead:

* ``"drop"``: EVENTs are dropped and counted. A message that must not be lost
  silently (RESULT, INVOCATION, ERROR, ...) evicts the newest EVENT still
  queued; when the queue holds no EVENT at all, the connection is closed, since
  losing it would hang a call forever.
* ``"disconnect"``: the connection is closed.

Either way a publisher goes on at full speed, so does every session that is
not feeding an over-full queue, and memory stays bounded. Dropping is logged
once per connection.

Time: the core reads no clock. The host calls ``router.tick(clock())`` before
feeding each batch of messages a connection received together, and
``RouterHost.run()`` sleeps until
``router.next_deadline()`` to fire timers (call timeouts) when no message
arrives. ``serve_router`` starts ``run()``; an embedder that calls ``handle()``
itself should start it too (without it, timers fire only when input arrives,
and each connection needs a nursery of its own for its writer task).

Keepalive (see docs/router.md): one sweeper task per host, under ``run()``,
wakes every ``keepalive_interval / 2`` seconds (or ``keepalive_timeout / 2``
if that is shorter) and walks the connections. A transport that counts
``idle_ticks`` (WebSocket, RawSocket: reset to 0 by every read) is pinged once
it has been silent for ``keepalive_interval`` seconds, and closed when nothing
at all arrived ``keepalive_timeout`` seconds after the ping. A writer task whose
current write has not finished for ``keepalive_timeout`` seconds (the peer reads
nothing) closes its connection too. Both counters are plain integer slots that
the sweep counts up and the read path (or the writer) resets: no timer, task or
clock read per connection.

Limits (see docs/reliability.md): every request a limit of the router refuses
(``max_sessions``, ``max_realms``, ``max_pending_calls`` ...) is logged at
WARNING, the first of each limit at once; the later ones within the next
``LIMIT_LOG_PERIOD`` seconds are counted, and the count is logged when that
period is over, so that a flood of refusals makes two lines a minute.

``serve_router(host, listeners)`` binds TCP (WebSocket, long-poll, RawSocket
on one port) and Unix (RawSocket) listeners, in the shape of
``trio.serve_tcp``: ``await nursery.start(serve_router, ...)`` returns the bound
endpoints.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, NamedTuple, NoReturn

import trio

import wamp_core
from wamp_core import CloseReason, MessageType, RouterSession, SessionState

from ._config import MAX_MESSAGE_SIZE, ListenerConfig, TcpListener
from ._listen import serve_tcp, serve_unix, tls_server_end_point
from ._longpoll import LongPollServer
from ._transport import MessageTransport, TransportClosed

__all__ = ["Endpoint", "HostedConnection", "RouterHost", "SlowConsumerPolicy", "serve_router"]

log = logging.getLogger("wamp_trio.router")

SlowConsumerPolicy = Literal["drop", "disconnect"]

# Stateless, so shared by every connection that has no cancel scope or nursery of its own.
_NO_SCOPE: contextlib.nullcontext[None] = contextlib.nullcontext()
_NO_NURSERY: contextlib.nullcontext[None] = contextlib.nullcontext()

_OVERFILL = 4
"""A queue may hold this many times ``queue_size`` messages that cannot be
dropped while their producers are held back (see ``RouterHost._make_room``)."""

_ANSWERS = frozenset(
    {
        MessageType.WELCOME,
        MessageType.ABORT,
        MessageType.CHALLENGE,
        MessageType.ERROR,
        MessageType.PUBLISHED,
        MessageType.SUBSCRIBED,
        MessageType.UNSUBSCRIBED,
        MessageType.RESULT,
        MessageType.REGISTERED,
        MessageType.UNREGISTERED,
    }
)
"""Messages that answer a session's own requests: a full queue of them is the
session's doing, never a reason to hold back another (see ``_make_room``)."""

_MIN_SWEEP_PERIOD = 0.05
"""The keepalive sweep runs at most this often (seconds), however short the timeouts."""

LIMIT_LOG_PERIOD = 60.0
"""After a refusal by a limit is logged, the next ones by the same limit are
only counted for this many seconds (see ``_LimitLog``)."""


def _peer(info: dict[str, Any]) -> str:
    peer = info.get("peer")
    kind = info.get("type", "transport")
    return f"{kind} {peer}" if peer else str(kind)


def _refusals(count: int, limit: str, period: float) -> str:
    return f"{count} more refusal{'s' if count > 1 else ''} by {limit} in the last {period:g} s"


class _LimitLog(wamp_core.RouterObserver):
    """Logs the router's refusals by its limits at WARNING, rate-limited per limit.

    The first refusal by a limit is logged at once; the ones by the same limit
    within the next ``period`` seconds (trio's clock) are counted. The count is
    logged by ``flush()`` once the period is over (the keepalive sweep calls
    it), or else with the next refusal by that limit.
    """

    def __init__(self, period: float = LIMIT_LOG_PERIOD) -> None:
        self.period = period
        self._quiet_until: dict[str, float] = {}  # by limit: count, do not log, until then
        self._counted: dict[str, int] = {}  # by limit: refusals not logged yet (absent: 0)

    def limit_reached(self, session: RouterSession, limit: str, message: str) -> None:
        """Log the refusal, or count it while ``limit`` was logged recently."""
        now = trio.current_time()
        if now < self._quiet_until.get(limit, -math.inf):
            self._counted[limit] = self._counted.get(limit, 0) + 1
            return
        self._quiet_until[limit] = now + self.period
        counted = self._counted.pop(limit, 0)
        more = f" (and {_refusals(counted, limit, self.period)})" if counted else ""
        log.warning("%s: refused by %s: %s%s", _peer(session.transport), limit, message, more)

    def flush(self) -> None:
        """Log the counts of the limits whose quiet period is over."""
        if not self._counted:
            return
        now = trio.current_time()
        for limit, counted in list(self._counted.items()):
            if now >= self._quiet_until[limit]:
                del self._counted[limit]
                log.warning("%s", _refusals(counted, limit, self.period))


class HostedConnection:
    """One connection run by ``RouterHost.handle``: its session, queue and counters.

    Read-only for users: ``queued`` (messages waiting now), ``peak_queued``
    (the most ever waiting; above ``queue_size`` only while producers were held
    back, at most four times that), ``sent`` (WAMP
    messages written), ``dropped`` (EVENTs dropped by the ``"drop"`` policy or
    because the transport refused their size), ``closed_by_policy`` (the reason
    when the host closed the connection itself: slow consumer, unanswered
    keepalive ping, stalled writer; else None).
    """

    __slots__ = (
        "_busy",
        "_closing",
        "_dead",
        "_drop_logged",
        "_finished",
        "_flush",
        "_listed",
        "_nursery",
        "_queue",
        "_queued",
        "_scope",
        "_stall",
        "_try_send",
        "_wakeup",
        "_writer",
        "_writing",
        "closed_by_policy",
        "dropped",
        "peak_queued",
        "queue_size",
        "sent",
        "session",
        "transport",
    )

    def __init__(
        self, transport: MessageTransport, session: RouterSession, queue_size: int
    ) -> None:
        self.transport = transport
        self.session = session
        self.queue_size = queue_size
        self.peak_queued = 0
        self.sent = 0
        self.dropped = 0
        self.closed_by_policy: str | None = None
        # (data, is_event); None is the close marker (not counted in queue_size).
        # A list (taken from in slices), not a deque: an idle connection's empty
        # list costs 56 bytes, a deque's first block 600.
        self._queue: list[tuple[bytes, bool] | None] = []
        self._queued = 0
        # Optional transport method: a write that never waits (see _send_direct);
        # not used where the transport says it cannot write directly (TLS).
        self._try_send: Callable[[list[bytes]], bool | None] | None = (
            getattr(transport, "try_send_many", None)
            if getattr(transport, "direct_io", True)
            else None
        )
        self._busy = False  # the writer task is between waking up and parking
        self._flush = False  # the transport holds the unwritten rest of a direct write
        self._listed = False  # in RouterHost._direct: written at the end of the batch
        self._closing = False  # close marker queued: accept no more output
        self._dead = False  # going away now: write nothing more
        self._drop_logged = False
        # The writer task, started on the first output that cannot be written
        # directly (most connections never need one), in ``_nursery``: the one of
        # RouterHost.run() if it runs, else one of the connection's own.
        self._nursery: trio.Nursery | None = None
        self._wakeup: trio.lowlevel.ParkingLot | None = None  # set when the writer starts
        self._writer: trio.CancelScope | None = None  # ... and its cancel scope
        self._writing = False  # the writer task runs
        # 0 while the writer task writes nothing; 1 when it starts a write; the
        # keepalive sweep counts up from there (see RouterHost._sweep).
        self._stall = 0
        # What ends handle() early: the transport's close_now() where it works
        # (a plain-socket RawSocket: no closing handshake to wait for), else a
        # cancel scope (600 bytes per connection) around the read loop.
        self._scope: trio.CancelScope | None = (
            None
            if getattr(transport, "direct_io", False) and hasattr(transport, "close_now")
            else trio.CancelScope()
        )
        self._finished = False

    def __repr__(self) -> str:
        return (
            f"<HostedConnection {self.name} {self.session!r} queued={self._queued}"
            f" dropped={self.dropped}>"
        )

    @property
    def name(self) -> str:
        """The peer, as the logs name it (``rawsocket tcp4:127.0.0.1:50123``)."""
        return _peer(self.transport.info)

    @property
    def queued(self) -> int:
        """Messages waiting in the outbound queue now."""
        return self._queued

    @property
    def finished(self) -> bool:
        """True once ``handle()`` has returned for this connection."""
        return self._finished


class Endpoint(NamedTuple):
    """One bound endpoint of ``serve_router``: a URL clients connect to, and its kind
    (``"websocket"``, ``"longpoll"`` or ``"rawsocket"``)."""

    url: str
    kind: str

    def __str__(self) -> str:
        label = {"longpoll": " (long-poll)", "rawsocket": " (RawSocket)"}.get(self.kind, "")
        return f"{self.url}{label}"


class RouterHost:
    """Binds a ``wamp_core.Router`` to transports; one ``handle()`` call per connection.

    ``queue_size`` bounds each connection's outbound queue (in messages);
    ``slow_consumer`` is the policy when it is full (module docstring).
    ``shutdown_timeout`` bounds how long ``shutdown()`` waits for the GOODBYE
    exchanges; ``close_timeout`` bounds each transport's closing handshake.
    ``batch_bytes`` caps the size of one transport message assembled from
    several queued deliveries for a batched serializer, and the bytes of
    several queued messages handed to one ``send_many`` (one write) on
    transports that have it (WebSocket, RawSocket).

    Keepalive (needs ``run()``): a WebSocket or RawSocket connection from which
    nothing was received for ``keepalive_interval`` seconds gets a PING; if
    still nothing arrives within ``keepalive_timeout`` seconds, the connection
    is closed as if the peer had gone (its session is detached). A connection
    whose writer has been blocked in one write for ``keepalive_timeout``
    seconds (the peer stopped reading) is closed the same way.
    ``keepalive_interval=None`` sends no pings; the writers are still watched.
    Both figures are honoured to within a sweep (half the smaller of the two):
    a ping goes out between ``keepalive_interval`` and 1.5 times that after the
    last input.

    The host adds an observer to ``router.observers`` that logs each refusal by
    a limit of the router at WARNING, at most two lines a minute per limit
    (module docstring).

    RawSocket connections get PINGs only with ``rawsocket_pings=True``: some
    RawSocket clients (Autobahn|Python's) fail their connection on a PING frame,
    though AP/ap_transport_rawsocket.md requires a PONG. Without them, a dead
    RawSocket peer over TCP is found by TCP keepalive, which ``serve_router``
    sets on its TCP listeners from the same two figures.
    """

    def __init__(
        self,
        router: wamp_core.Router,
        *,
        queue_size: int = 1024,
        slow_consumer: SlowConsumerPolicy = "drop",
        shutdown_timeout: float = 5.0,
        close_timeout: float = 2.0,
        batch_bytes: int = 65536,
        clock: Callable[[], float] = time.time,
        keepalive_interval: float | None = 30.0,
        keepalive_timeout: float = 30.0,
        rawsocket_pings: bool = False,
    ) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, not {queue_size}")
        if keepalive_interval is not None and not keepalive_interval > 0:
            raise ValueError(
                f"keepalive_interval must be positive or None, not {keepalive_interval}"
            )
        if not keepalive_timeout > 0:
            raise ValueError(f"keepalive_timeout must be positive, not {keepalive_timeout}")
        if slow_consumer not in ("drop", "disconnect"):
            raise ValueError(f"slow_consumer must be 'drop' or 'disconnect', not {slow_consumer!r}")
        self.router = router
        self.queue_size = queue_size
        self.slow_consumer: SlowConsumerPolicy = slow_consumer
        self.shutdown_timeout = shutdown_timeout
        self.close_timeout = close_timeout
        self.batch_bytes = batch_bytes
        self.dropped = 0
        """EVENTs dropped over all connections, past and present."""
        self.slow_disconnects = 0
        """Connections closed because their queue was full (or a message too large)."""
        self.keepalive_interval = keepalive_interval
        self.keepalive_timeout = keepalive_timeout
        self.rawsocket_pings = rawsocket_pings
        self.timeout_disconnects = 0
        """Connections closed because they answered no keepalive ping, or their
        writer stayed blocked, for ``keepalive_timeout`` seconds."""
        self._connections: dict[RouterSession, HostedConnection] = {}
        self._changed = trio.lowlevel.ParkingLot()  # a session's state may have changed
        self._closing = False
        self.clock = clock
        """Wall-clock time in seconds since the epoch, fed to ``router.tick()``."""
        self._timers_changed = trio.lowlevel.ParkingLot()
        self._sleeping_until: float | None = None  # the deadline run() waits for
        # The connection whose reader is feeding a batch (direct writes wait for
        # its end), else None.
        self._reader: HostedConnection | None = None
        # Other connections whose queues that batch filled beyond queue_size
        # (see _make_room): its reader stops and waits for them in _hold().
        self._full: list[HostedConnection] = []
        self._holders: list[HostedConnection] = []  # connections whose reader waits in _hold
        self._drained = trio.lowlevel.ParkingLot()  # where they wait
        self._writers: trio.Nursery | None = None  # run()'s, for the connections' writers
        self._direct: list[HostedConnection] = []  # connections with output to write directly
        self._limit_log = _LimitLog()
        router.observers.append(self._limit_log)

    @property
    def connections(self) -> tuple[HostedConnection, ...]:
        """The connections being handled now."""
        return tuple(self._connections.values())

    def connection_for(self, transport: MessageTransport) -> HostedConnection | None:
        """The running connection for ``transport``, if any."""
        for conn in self._connections.values():
            if conn.transport is transport:
                return conn
        return None

    # -- one connection ----------------------------------------------------------------

    async def handle(self, transport: MessageTransport) -> None:
        """Run one connection until the peer or the router ends it, then close it.

        Never raises for anything the peer does; an unexpected error is logged and
        ends only this connection.
        """
        if self._closing:
            await self._close_transport(transport)
            return
        session = self.router.attach(transport.serializer, transport.info)
        conn = HostedConnection(transport, session, self.queue_size)
        self._connections[session] = conn
        log.debug("%s: connected", conn.name)
        # Optional transport method: a message already received and buffered, or
        # None. Feeding those without a checkpoint in between lets the writers
        # send what they produced in one write per connection.
        receive_buffered: Callable[[], bytes | None] | None = getattr(
            transport, "receive_buffered", None
        )
        # The read loop is inline (one coroutine less per idle connection); the
        # writer task (see _wake) runs in run()'s nursery, or, when run() is not
        # running, in one of the connection's own.
        full = self._full  # non-empty: the batch must stop (see _make_room)
        try:
            with conn._scope if conn._scope is not None else _NO_SCOPE:
                async with _NO_NURSERY if self._writers is not None else trio.open_nursery() as own:
                    conn._nursery = self._writers if own is None else own
                    while not conn._dead:
                        try:
                            data: bytes | None = await transport.receive()
                        except TransportClosed:
                            break
                        # No await until the batch is fed: the output queued meanwhile
                        # goes out in one write per connection, directly where
                        # possible. The clock is read once per batch (its messages
                        # arrived together).
                        self._reader = conn
                        self.router.tick(self.clock())
                        held: list[HostedConnection] | None = None
                        try:
                            while data is not None and not conn._dead:
                                self._feed(conn, data)
                                if full or receive_buffered is None:
                                    break
                                data = receive_buffered()
                        finally:
                            self._reader = None
                            if full:  # the rest of the input stays in the transport
                                held = full.copy()
                                full.clear()
                            self._send_direct()
                            self._check_timers()
                        if held:
                            await self._hold(conn, held)
                    if own is not None:
                        own.cancel_scope.cancel()
        except Exception:
            log.exception("%s: internal error; closing the connection", conn.name)
        finally:
            conn._dead = True
            conn._nursery = None
            self._release()
            if conn._writer is not None:
                # The peer closed its side, or the connection is ending:
                # nothing more can be written.
                conn._writer.cancel()
            del self._connections[session]
            self.router.detach(session)  # idempotent; answers orphaned calls
            self._dispatch()
            self._changed.unpark_all()
            if conn._writing:
                with trio.CancelScope(shield=True):
                    while conn._writing:  # cancelled: it stops at its next checkpoint
                        await self._changed.park()
            await self._close_transport(transport)
            conn._finished = True
            self._changed.unpark_all()
            if conn.dropped:
                log.info("%s: closed; %d EVENTs were dropped", conn.name, conn.dropped)
            else:
                log.debug("%s: closed", conn.name)

    def _feed(self, conn: HostedConnection, data: bytes) -> None:
        """Hand one transport message to the router and dispatch its output."""
        try:
            self.router.receive_data(conn.session, data)
        except wamp_core.RemoteProtocolError as exc:
            # The core queued ABORT and a close: keep reading (and ignoring)
            # until the writer has flushed them and closes the connection.
            log.info("%s: protocol violation: %s", conn.name, exc)
        finally:
            self._dispatch()
        if self._changed:  # someone waits (shutdown): unpark_all costs even for nobody
            self._changed.unpark_all()

    def _stop(self, conn: HostedConnection) -> None:
        """End ``conn``'s ``handle()``: cancel its read loop, or close its transport
        at once where it has no cancel scope (see HostedConnection)."""
        conn._dead = True
        self._release()  # its reader may wait in _hold, or others on its queue
        if conn._scope is not None:
            conn._scope.cancel()
        else:
            conn.transport.close_now()  # type: ignore[attr-defined]

    def _check_timers(self) -> None:
        """Wake run() if the router's next timer is due before it planned to wake."""
        deadline = self.router.next_deadline()
        if deadline is not None and (
            self._sleeping_until is None or deadline < self._sleeping_until
        ):
            self._timers_changed.unpark_all()  # run() must wake up earlier

    async def _write_loop(self, conn: HostedConnection) -> None:
        transport = conn.transport
        batched = transport.serializer.batched
        # Optional transport method: several transport messages in one write.
        send_many: Callable[[list[bytes]], Awaitable[None]] | None = getattr(
            transport, "send_many", None
        )
        # Present whenever try_send_many is: writes what a direct write left over.
        flush: Callable[[], Awaitable[None]] | None = getattr(transport, "flush", None)
        queue = conn._queue
        wakeup = conn._wakeup
        assert wakeup is not None
        whole_batches = batched or send_many is not None
        while True:
            if not queue and not conn._flush:
                conn._busy = False
                conn._stall = 0
                while not queue and not conn._flush:
                    await wakeup.park()
                conn._busy = True
            conn._stall = 1  # a write starts: the keepalive sweep watches it
            if conn._flush:  # the rest of a direct write goes first
                conn._flush = False
                assert flush is not None
                try:
                    await flush()
                except TransportClosed:
                    self._stop(conn)
                    return
                continue
            parts = self._take(conn, whole_batches)
            if not parts:  # close marker: everything before it is written
                self._stop(conn)
                return
            try:
                if batched:
                    await transport.send(b"".join([data for data, _ in parts]))
                elif len(parts) == 1 or send_many is None:
                    await transport.send(parts[0][0])
                else:
                    await send_many([data for data, _ in parts])
            except TransportClosed:
                self._stop(conn)
                return
            except ValueError:
                # Larger than the peer accepts: send them one by one.
                if not await self._send_one_by_one(conn, parts):
                    return
                continue
            conn.sent += len(parts)

    def _take(self, conn: HostedConnection, batch: bool) -> list[tuple[bytes, bool]]:
        """Remove the next messages from the front of ``conn``'s queue: one, or with
        ``batch`` as many as fit in ``batch_bytes`` (at least one); none when the
        close marker is first."""
        queue = conn._queue
        end = 0
        if batch:
            size = 0
            limit = self.batch_bytes
            for item in queue:
                if item is None or (end and size + len(item[0]) > limit):
                    break
                size += len(item[0])
                end += 1
        elif queue[0] is not None:
            end = 1
        taken = queue[:end]
        del queue[:end]
        queued = conn._queued = conn._queued - end
        if self._holders and queued < self.queue_size <= queued + end:
            self._drained.unpark_all()  # a reader may wait for this queue (see _hold)
        return taken  # type: ignore[return-value]  # no None before ``end``

    async def _send_one_by_one(
        self, conn: HostedConnection, parts: list[tuple[bytes, bool]]
    ) -> bool:
        for data, is_event in parts:
            conn._stall = 1  # each write is progress (see _sweep)
            try:
                await conn.transport.send(data)
            except TransportClosed:
                self._stop(conn)
                return False
            except ValueError as exc:
                if is_event:
                    log.warning("%s: EVENT dropped: %s", conn.name, exc)
                    self._count_drop(conn, log_it=False)
                    continue
                self._disconnect(conn, f"a message could not be sent: {exc}")
                self._dispatch()
                return False
            conn.sent += 1
        return True

    async def _close_transport(self, transport: MessageTransport) -> None:
        with trio.move_on_after(self.close_timeout, shield=True):
            with contextlib.suppress(
                TransportClosed, trio.BrokenResourceError, trio.ClosedResourceError, OSError
            ):
                await transport.aclose()

    def dispatch(self) -> None:
        """Hand what the router queued to the connections.

        The host does this after every message it feeds the router; call it
        after calling the router directly (``realm.dealer.revoke(...)``,
        ``router.close_session(...)``, ...)."""
        self._dispatch()
        self._changed.unpark_all()

    # -- timers --------------------------------------------------------------------

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> NoReturn:
        """Fire the router's timers (call timeouts, ...) when they fall due; runs until
        cancelled. ``await nursery.start(host.run)``.

        While it runs, the connections' writer tasks run under it too (when a
        connection needs one), which spares each connection a nursery."""
        async with trio.open_nursery() as writers:
            self._writers = writers
            try:
                period = self._sweep_period()
                if period is not None:
                    writers.start_soon(self._sweep, period)
                task_status.started()
                while True:
                    deadline = self.router.next_deadline()
                    self._sleeping_until = deadline
                    delay = math.inf if deadline is None else max(0.0, deadline - self.clock())
                    with trio.move_on_after(delay):
                        await self._timers_changed.park()
                    self._sleeping_until = None
                    self.router.tick(self.clock())
                    self._dispatch()
                    self._changed.unpark_all()
            finally:
                if self._writers is writers:
                    self._writers = None

    # -- keepalive -------------------------------------------------------------------

    def _sweep_period(self) -> float | None:
        """Seconds between keepalive sweeps; None when nothing is to be watched."""
        periods = [
            t
            for t in (self.keepalive_interval, self.keepalive_timeout)
            if t is not None and t < math.inf
        ]
        if not periods:
            return None
        return max(_MIN_SWEEP_PERIOD, min(periods) / 2)

    async def _sweep(self, period: float) -> NoReturn:
        """Ping silent connections and close dead ones; see the module docstring.

        A transport's ``idle_ticks`` is reset to 0 by its read path, and counted
        up here at each sweep: after a reset between two sweeps, the value ``n``
        means at least ``(n - 1) * period`` seconds of silence. The PING goes at
        ``ping_at``, the connection is closed ``timeout / period`` sweeps later.
        A writer's ``_stall`` works alike: 1 at the start of a write, counted up
        here, closed once the write has lasted ``timeout`` seconds.
        """
        interval, timeout = self.keepalive_interval, self.keepalive_timeout
        rawsocket_pings = self.rawsocket_pings
        ping_at = math.inf if interval is None else math.ceil(interval / period) + 1
        close_at = ping_at + math.ceil(timeout / period) if timeout < math.inf else math.inf
        stall_at = math.ceil(timeout / period) + 2 if timeout < math.inf else math.inf
        while True:
            await trio.sleep(period)
            self._limit_log.flush()
            closed = False
            for conn in list(self._connections.values()):
                if conn._dead:
                    continue
                if conn._stall:
                    stall = conn._stall = conn._stall + 1
                    if stall >= stall_at:
                        self._time_out(
                            conn,
                            f"its output has not moved for {timeout:g} s (the peer reads nothing)",
                        )
                        closed = True
                        continue
                if conn in self._holders:  # not read meanwhile: its silence says nothing
                    continue
                transport = conn.transport
                ticks: int | None = getattr(transport, "idle_ticks", None)
                if ticks is None:  # no keepalive on this transport (long-poll, memory)
                    continue
                if not rawsocket_pings and transport.info.get("type") == "rawsocket":
                    continue  # see the class docstring: TCP keepalive instead
                ticks += 1
                transport.idle_ticks = ticks  # type: ignore[attr-defined]
                if ticks == ping_at:
                    self._ping(conn)
                elif ticks >= close_at:
                    self._time_out(
                        conn, f"no answer to a keepalive ping within {timeout:g} s", warn=False
                    )
                    closed = True
            if closed:
                self._dispatch()
                self._changed.unpark_all()

    def _ping(self, conn: HostedConnection) -> None:
        """Send a keepalive PING on ``conn`` without waiting for its socket."""
        transport: Any = conn.transport
        try:
            done = transport.try_send_ping()
        except ValueError:  # the peer takes no message even that small
            return
        if done is False:  # the rest waits for the writer's flush()
            conn._flush = True
            self._wake(conn)
        elif (
            done is None and not getattr(transport, "direct_io", True) and self._writers is not None
        ):
            # TLS: a write needs a task. A short-lived one, for this ping only.
            self._writers.start_soon(self._send_ping, transport)

    async def _send_ping(self, transport: Any) -> None:
        # Bounded, but later than the sweep's own close (which ends the write).
        with trio.move_on_after(2 * self.keepalive_timeout):
            with contextlib.suppress(
                TransportClosed, ValueError, trio.BrokenResourceError, trio.ClosedResourceError
            ):
                await transport.send_ping()

    def _time_out(self, conn: HostedConnection, why: str, *, warn: bool = True) -> None:
        """Close ``conn`` now as dead (the caller dispatches after)."""
        self.timeout_disconnects += 1
        log.log(logging.WARNING if warn else logging.INFO, "%s: %s; closing", conn.name, why)
        self._close_by_policy(conn, why)

    # -- output --------------------------------------------------------------------

    def _dispatch(self) -> None:
        """Hand everything the router queued to the connections' queues. Never awaits."""
        connections = self._connections
        queue_size = self.queue_size
        direct = self._direct
        event = MessageType.EVENT
        while deliveries := self.router.data_to_send():
            for delivery in deliveries:
                conn = connections.get(delivery.session)
                if conn is None or conn._dead:
                    continue
                data = delivery.data
                if data is None or conn._closing or conn._queued >= queue_size:
                    self._offer(conn, data, delivery.type)
                    continue
                # _offer's common case, inline: there is room in the queue.
                conn._queue.append((data, delivery.type is event))
                queued = conn._queued = conn._queued + 1
                conn.peak_queued = max(conn.peak_queued, queued)
                if conn._try_send is None or conn._busy or conn._flush:
                    self._wake(conn)
                elif not conn._listed:
                    conn._listed = True
                    direct.append(conn)
        if self._reader is None:
            self._send_direct()

    def _send_direct(self) -> None:
        """Write the queued output of the listed connections from this task, where
        the transport can without waiting; wake the writer for anything else."""
        listed = self._direct
        if not listed:
            return
        self._direct = []
        for conn in listed:
            conn._listed = False
            if not conn._dead:
                self._write_direct(conn)

    def _write_direct(self, conn: HostedConnection) -> None:
        """Write ``conn``'s queue from this task as far as its transport takes it
        without waiting (it has ``try_send_many``; its writer is idle); wake the
        writer for the rest."""
        queue = conn._queue
        try_send = conn._try_send
        assert try_send is not None
        batched = conn.transport.serializer.batched
        while queue and not conn._busy and not conn._flush:
            items = self._take(conn, True)
            if not items:
                break  # the close marker: the writer closes
            parts = [data for data, _ in items]
            try:
                done = try_send([b"".join(parts)] if batched else parts)
            except ValueError:
                done = None  # too large for the peer: the writer sorts it out
            if done is None:  # not taken: back to the queue, for the writer
                queue[0:0] = items
                conn._queued += len(items)
                break
            conn.sent += len(items)
            if not done:
                conn._flush = True
        if queue or conn._flush:
            self._wake(conn)

    def _wake(self, conn: HostedConnection) -> None:
        """Have ``conn``'s writer task write its queue (starting it if need be)."""
        if conn._wakeup is not None:
            if conn._wakeup:  # the writer is parked (else it is writing, and will look)
                conn._wakeup.unpark_all()
            return
        nursery = conn._nursery
        if nursery is None:  # the connection is ending
            return
        conn._wakeup = trio.lowlevel.ParkingLot()
        conn._writer = trio.CancelScope()
        try:
            nursery.start_soon(self._run_writer, conn)
        except RuntimeError:  # run()'s nursery is closed: the host is going away
            self._stop(conn)
            return
        conn._writing = True

    async def _run_writer(self, conn: HostedConnection) -> None:
        """The writer task of ``conn``; when it ends, so does the connection."""
        assert conn._writer is not None
        try:
            with conn._writer:
                await self._write_loop(conn)
        except Exception:
            log.exception("%s: internal error; closing the connection", conn.name)
        finally:
            conn._writing = False
            conn._stall = 0
            self._stop(conn)
            self._changed.unpark_all()

    def _offer(
        self, conn: HostedConnection, data: bytes | None, kind: MessageType | None = None
    ) -> None:
        if conn._closing:
            return
        queue = conn._queue
        if data is None:
            conn._closing = True
            queue.append(None)
            self._wake(conn)
            return
        is_event = kind is MessageType.EVENT
        if conn._queued >= self.queue_size and not self._make_room(conn, kind):
            return
        queue.append((data, is_event))
        conn._queued += 1
        conn.peak_queued = max(conn.peak_queued, conn._queued)
        if conn._try_send is None or conn._busy or conn._flush:
            self._wake(conn)
        elif not conn._listed:
            conn._listed = True
            self._direct.append(conn)

    def _make_room(self, conn: HostedConnection, kind: MessageType | None) -> bool:
        """``conn``'s queue is full: True if a ``kind`` message may be queued all
        the same, False if not (dropped, or ``conn`` closed by the policy).

        A full queue may be no more than one producer's burst: it is first
        written out directly, where the socket takes it. Then the policy judges
        an EVENT, an answer to ``conn``'s own requests, and what its own reader
        produced (a client that does not read its answers holds back nobody).
        Anything else goes beyond ``queue_size``, up to ``_OVERFILL`` times it,
        and the other client's reader that produced it stops after this message
        (see ``_hold``); so do the answers once the queue is beyond
        ``queue_size`` already (not conn's doing).
        """
        queue_size = self.queue_size
        if conn._try_send is not None and not conn._busy and not conn._flush:
            self._write_direct(conn)
            if conn._queued < queue_size:
                return True
        drop = self.slow_consumer == "drop"
        if kind is MessageType.EVENT:
            if drop:
                self._count_drop(conn)
            else:
                self._disconnect(conn, f"outbound queue full ({queue_size} messages)")
            return False
        queue = conn._queue
        if drop:  # make room by evicting the newest EVENT still queued
            for index in range(len(queue) - 1, -1, -1):
                item = queue[index]
                if item is not None and item[1]:
                    del queue[index]
                    conn._queued -= 1
                    self._count_drop(conn)
                    return True
        limit = queue_size
        reader = self._reader
        hold = reader is not None and reader is not conn and kind not in _ANSWERS
        if hold or reader is None or conn._queued > queue_size:
            limit = _OVERFILL * queue_size
            if conn._queued < limit:
                if hold and conn not in self._full:
                    self._full.append(conn)  # the reader stops after this message
                return True
        why = f"outbound queue full ({limit} messages)"
        if drop:
            why += " and none of them is an EVENT that could be dropped"
        self._disconnect(conn, why)
        return False

    async def _hold(self, conn: HostedConnection, full: list[HostedConnection]) -> None:
        """Stop reading ``conn`` until the queues its last batch filled beyond
        ``queue_size`` have drained below it (their writers wake it, see
        ``_take``) or their connections are gone. Writers never wait on readers,
        and ``full`` never holds ``conn`` itself: no cycle can form."""
        queue_size = self.queue_size
        self._holders.append(conn)
        try:
            while not conn._dead and any(
                not other._dead and other._queued >= queue_size for other in full
            ):
                await self._drained.park()
        finally:
            self._holders.remove(conn)

    def _release(self) -> None:
        """Have the readers waiting in ``_hold`` look again."""
        if self._holders:
            self._drained.unpark_all()

    def _count_drop(self, conn: HostedConnection, *, log_it: bool = True) -> None:
        conn.dropped += 1
        self.dropped += 1
        if log_it and not conn._drop_logged:
            conn._drop_logged = True
            log.warning(
                "%s: slow consumer: outbound queue full (%d messages); dropping its EVENTs",
                conn.name,
                self.queue_size,
            )

    def _disconnect(self, conn: HostedConnection, why: str) -> None:
        """Close ``conn`` now as a slow consumer (the caller dispatches after)."""
        if conn._dead:
            return
        self.slow_disconnects += 1
        log.warning("%s: closing the connection: %s", conn.name, why)
        self._close_by_policy(conn, why)

    def _close_by_policy(self, conn: HostedConnection, why: str) -> None:
        """Close ``conn`` now for ``why``, discarding its queue."""
        conn._dead = True
        conn.closed_by_policy = why
        conn._queue.clear()
        conn._queued = 0
        # Detach at once: no more deliveries for it, and its callers and callees
        # learn now (the handler's own detach is then a no-op).
        self.router.detach(conn.session)
        self._stop(conn)

    # -- shutdown --------------------------------------------------------------------

    async def shutdown(
        self,
        reason: str = CloseReason.SYSTEM_SHUTDOWN,
        message: str | None = None,
        *,
        timeout: float | None = None,
    ) -> None:
        """Close every session with GOODBYE ``reason`` and every connection.

        Waits up to ``timeout`` (default ``shutdown_timeout``) for the clients'
        GOODBYE replies and for the queued output to be written, then closes
        whatever is left. Connections arriving later are closed at once.
        Returns when every ``handle()`` call has finished.
        """
        self._closing = True
        self.router.shutdown(reason, message)
        self._dispatch()
        with trio.move_on_after(self.shutdown_timeout if timeout is None else timeout):
            while any(
                c.session.state is SessionState.SHUTTING_DOWN for c in self._connections.values()
            ):
                await self._changed.park()
            for conn in list(self._connections.values()):
                self._offer(conn, None)  # close once the queue is written
            await self._all_finished()
        for conn in list(self._connections.values()):
            self._stop(conn)
        await self._all_finished()

    async def _all_finished(self) -> None:
        """Wait until every connection handled now has finished."""
        running = list(self._connections.values())
        while not all(conn._finished for conn in running):
            await self._changed.park()


# -- serving on sockets ------------------------------------------------------------


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _endpoints(listener: TcpListener, address: tuple[Any, ...]) -> list[Endpoint]:
    host, port = _url_host(str(address[0])), address[1]
    secure = listener.tls is not None
    out = []
    if listener.websocket is not None:
        out.append(
            Endpoint(
                f"{'wss' if secure else 'ws'}://{host}:{port}{listener.websocket}", "websocket"
            )
        )
    if listener.longpoll is not None:
        out.append(
            Endpoint(
                f"{'https' if secure else 'http'}://{host}:{port}{listener.longpoll}", "longpoll"
            )
        )
    if listener.rawsocket:
        out.append(Endpoint(f"{'rss' if secure else 'rs'}://{host}:{port}", "rawsocket"))
    return out


def _socket_address(listener: trio.abc.Listener[Any]) -> tuple[Any, ...]:
    inner: Any = listener
    while not isinstance(inner, trio.SocketListener):
        inner = inner.transport_listener  # trio.SSLListener
    address: tuple[Any, ...] = inner.socket.getsockname()
    return address


async def serve_router(
    host: RouterHost,
    listeners: Sequence[ListenerConfig],
    *,
    max_message_size: int = MAX_MESSAGE_SIZE,
    handshake_timeout: float = 10.0,
    longpoll_idle_timeout: float = 30.0,
    websocket_max_message_size: int | None = None,
    rawsocket_max_message_size: int | None = None,
    longpoll_max_body_size: int | None = None,
    task_status: trio.TaskStatus[list[Endpoint]] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Serve ``host`` on ``listeners`` until cancelled.

    ``await nursery.start(serve_router, host, listeners)`` returns once every
    listener is bound, with the endpoints clients can use (the actual port when
    the configured one is 0). To stop cleanly, ``await host.shutdown()`` (every
    session gets GOODBYE) and then cancel this task.

    Sizes, in bytes, of the largest message a client may send: WebSocket
    messages (larger: close 1009), RawSocket messages (the maximum announced in
    the handshake is the largest power of two not above it, at most 16 MiB; a
    larger frame is a protocol error that closes the connection), long-poll
    request bodies (larger: HTTP 413). Each defaults to ``max_message_size``.
    ``handshake_timeout``: a client must complete its TLS, WebSocket or
    RawSocket handshake within that many seconds, or it is dropped.
    ``longpoll_idle_timeout``: a long-poll transport that sees no request for
    that long is closed. With ``host.keepalive_interval`` set, the TCP
    listeners' sockets get TCP keepalive: probes after that many idle seconds,
    the connection reset when ``host.keepalive_timeout`` more pass unanswered
    (this finds dead RawSocket peers, which get no PINGs by default).
    """
    ws_size = max_message_size if websocket_max_message_size is None else websocket_max_message_size
    rs_size = max_message_size if rawsocket_max_message_size is None else rawsocket_max_message_size
    lp_size = max_message_size if longpoll_max_body_size is None else longpoll_max_body_size
    exponent = wamp_core.rawsocket_length_exponent(rs_size)
    endpoints: list[Endpoint] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(host.run)
        for listener in listeners:
            if isinstance(listener, TcpListener):
                longpoll = None
                if listener.longpoll is not None:
                    longpoll = LongPollServer(
                        host.handle,
                        listener.longpoll,
                        idle_timeout=longpoll_idle_timeout,
                        max_body_size=lp_size,
                    )
                    await nursery.start(longpoll.run)
                tcp = functools.partial(
                    serve_tcp,
                    host.handle,
                    listener.host,
                    listener.port,
                    ssl_context=None if listener.tls is None else listener.tls.ssl_context(),
                    websocket_path=listener.websocket,
                    longpoll=longpoll,
                    rawsocket=listener.rawsocket,
                    max_message_size=ws_size,
                    max_length_exponent=exponent,
                    handshake_timeout=handshake_timeout,
                    tcp_keepalive=(
                        None
                        if host.keepalive_interval is None
                        else (host.keepalive_interval, host.keepalive_timeout)
                    ),
                    tls_server_end_point=(
                        None if listener.tls is None else tls_server_end_point(listener.tls.cert)
                    ),
                )
                bound = await nursery.start(tcp)
                for sock_listener in bound:
                    endpoints.extend(_endpoints(listener, _socket_address(sock_listener)))
            else:
                unix = functools.partial(
                    serve_unix,
                    host.handle,
                    listener.path,
                    max_length_exponent=exponent,
                    handshake_timeout=handshake_timeout,
                )
                await nursery.start(unix)
                endpoints.append(Endpoint(f"unix://{listener.path}", "rawsocket"))
        task_status.started(endpoints)
        await trio.sleep(math.inf)
    raise AssertionError("unreachable")  # pragma: no cover
