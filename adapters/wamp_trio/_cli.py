"""The ``wampcore`` command: run a router, or poke at one from a shell.

``wampcore router`` serves the embedded default configuration (see
docs/router.md); ``--config FILE`` and flags change it. ``wampcore call``,
``publish``, ``subscribe`` and ``register`` talk to any WAMP router, taking
JSON on the command line and printing JSON on stdout. ``wampcore conformance``
checks a router against the spec, ``wampcore bench`` measures one.

Exit status: 0 on success (including a router stopped by SIGINT or SIGTERM),
1 for a runtime failure (a WAMP error, a port already taken, a connection
refused), 2 for a bad flag or configuration, always reported as one line on
stderr.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import functools
import json
import logging
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from typing import IO, Any, NoReturn

import trio

import wamp_core

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 needs the tomli backport
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

from ._client import (
    ApplicationError,
    CallResult,
    JoinError,
    SessionEnded,
    TransportLost,
    connect,
)
from ._config import (
    DEFAULT_CONFIG,
    LOG_LEVELS,
    ConfigError,
    Limits,
    RealmConfig,
    RouterConfig,
    TcpListener,
    UnixListener,
    build_router,
    check_http_path,
    load_config,
    parse_limits,
    realm_name,
)
from ._host import Endpoint, RouterHost, serve_router
from ._transport import TransportClosed

__all__ = ["main", "run_router"]

log = logging.getLogger("wamp_trio.router")


class _UsageError(Exception):
    """A bad command line, reported as one line and exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{self.prog}: error: {message} (see --help)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``wampcore`` command with ``argv`` (default ``sys.argv[1:]``);
    return the exit status."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    status: int = args.run(args)
    return status


def _build_parser() -> _Parser:
    parser = _Parser(
        prog="wampcore",
        description="WAMP v2 router and command-line client (wamp-core).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    router = commands.add_parser(
        "router",
        help="run a WAMP router",
        description="Run a WAMP router. Without options: realm 'realm1' open to anonymous"
        " sessions; WebSocket (/ws), long-poll (/lp) and RawSocket on 127.0.0.1:8080;"
        " RawSocket on the Unix socket ./wampcore.sock.",
    )
    router.add_argument("--config", metavar="FILE", help="TOML configuration file")
    tcp = router.add_argument_group("TCP listener (the first one of --config)")
    tcp.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    tcp.add_argument("--port", type=int, help="TCP port (default 8080; 0 picks a free one)")
    tcp.add_argument("--ws-path", metavar="PATH", help="WebSocket path (default /ws)")
    tcp.add_argument("--lp-path", metavar="PATH", help="long-poll base path (default /lp)")
    tcp.add_argument("--no-websocket", action="store_true", help="turn WebSocket off")
    tcp.add_argument("--no-longpoll", action="store_true", help="turn long-poll off")
    tcp.add_argument("--no-rawsocket", action="store_true", help="turn RawSocket over TCP off")
    unix = router.add_mutually_exclusive_group()
    unix.add_argument("--unix", metavar="PATH", help="Unix socket path (default ./wampcore.sock)")
    unix.add_argument("--no-unix", action="store_true", help="no Unix socket listener")
    router.add_argument(
        "--realm",
        action="append",
        metavar="NAME",
        help="serve realm NAME (repeatable; replaces the default realm1, adds to --config's)",
    )
    router.add_argument("--queue-size", type=int, metavar="N", help="outbound queue bound")
    router.add_argument(
        "--slow-consumer", choices=("drop", "disconnect"), help="policy for a full queue"
    )
    router.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a [limits] key, as in the configuration file (repeatable;"
        " e.g. --limit max_sessions=1000 --limit keepalive_interval=0)",
    )
    router.add_argument("--log-level", choices=LOG_LEVELS, help="default info")
    router.set_defaults(run=_router_command)

    common = _Parser(add_help=False)
    common.add_argument("url", help="router URL: ws://, wss://, rs://, rss://, unix://, http://")
    common.add_argument("--realm", default="realm1", help="realm to join (default realm1)")
    common.add_argument("--serializer", default="json", help="json, msgpack, cbor (default json)")

    call = commands.add_parser(
        "call", parents=[common], help="call a procedure, print its result as JSON"
    )
    call.add_argument("procedure")
    call.add_argument("args", nargs="*", metavar="ARG", help="JSON value (else a string)")
    call.add_argument("--kw", action="append", default=[], metavar="KEY=VALUE")
    call.set_defaults(run=_client_command, action=_call, interrupted_status=_INTERRUPTED)

    publish = commands.add_parser("publish", parents=[common], help="publish an event")
    publish.add_argument("topic")
    publish.add_argument("args", nargs="*", metavar="ARG", help="JSON value (else a string)")
    publish.add_argument("--kw", action="append", default=[], metavar="KEY=VALUE")
    publish.set_defaults(run=_client_command, action=_publish, interrupted_status=_INTERRUPTED)

    subscribe = commands.add_parser(
        "subscribe", parents=[common], help="print events as JSON lines"
    )
    subscribe.add_argument("topic")
    subscribe.add_argument("--count", type=int, metavar="N", help="exit after N events")
    subscribe.add_argument("--match", choices=("exact", "prefix", "wildcard"))
    subscribe.add_argument(
        "--queue-size", type=int, default=1000, metavar="N", help="events kept while printing"
    )
    subscribe.set_defaults(run=_client_command, action=_subscribe, interrupted_status=0)

    register = commands.add_parser("register", parents=[common], help="answer calls")
    register.add_argument("procedure")
    reply = register.add_mutually_exclusive_group(required=True)
    reply.add_argument("--reply", metavar="JSON", help="answer every call with this value")
    reply.add_argument("--echo", action="store_true", help="answer with the call's arguments")
    register.add_argument("--count", type=int, metavar="N", help="exit after N calls")
    register.add_argument("--match", choices=("exact", "prefix", "wildcard"))
    register.set_defaults(run=_client_command, action=_register, interrupted_status=0)

    # wamp_conformance builds on this package: imported when the parser is built.
    from wamp_conformance._cli import add_arguments, run_command  # noqa: PLC0415

    conformance = commands.add_parser(
        "conformance",
        help="check a WAMP router against the spec",
        description="Run the conformance scenarios against the router at URL and print"
        " pass / fail / skipped for each, with the spec section it checks. Exit status 0"
        " only when nothing failed. See docs/conformance.md.",
    )
    add_arguments(conformance)
    conformance.set_defaults(run=run_command)

    # wamp_bench builds on this package too: imported when the parser is built.
    from wamp_bench._cli import add_arguments as add_bench_arguments  # noqa: PLC0415
    from wamp_bench._cli import run_command as run_bench  # noqa: PLC0415

    bench = commands.add_parser(
        "bench",
        help="measure a WAMP router: latency, throughput, fan-out, memory",
        description="Load the router at URL with one workload (rpc-latency, rpc-throughput,"
        " fanout, idle; echo-rpc measures the bare echo server instead) and report latency"
        " percentiles, rates and memory per session. Exit status 0 when the run completed."
        " See docs/bench.md.",
    )
    add_bench_arguments(bench)
    bench.set_defaults(run=run_bench)
    return parser


# -- wampcore router -----------------------------------------------------------------


def _router_command(args: argparse.Namespace) -> int:
    prog = "wampcore router"
    try:
        config = router_config(args)
        for listener in config.listeners:
            if isinstance(listener, TcpListener) and listener.tls is not None:
                listener.tls.ssl_context()  # fail now, with the key named
    except ConfigError as exc:
        where = f"{args.config}: " if args.config and exc.key != args.config else ""
        print(f"{prog}: error: {where}{exc}", file=sys.stderr)
        return 2
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    package_logger = logging.getLogger("wamp_trio")
    package_logger.addHandler(handler)
    previous_level = package_logger.level
    package_logger.setLevel(config.logging_level)
    try:
        return trio.run(run_router, config)
    finally:
        package_logger.removeHandler(handler)
        package_logger.setLevel(previous_level)


def router_config(args: argparse.Namespace) -> RouterConfig:
    """The configuration ``wampcore router`` runs: the file or the default, with
    the flags applied. Raises ``ConfigError`` naming the key or the flag."""
    config = load_config(args.config) if args.config else DEFAULT_CONFIG
    listeners = list(config.listeners)

    tcp: dict[str, Any] = {}
    flag_for: dict[str, str] = {}
    if args.host is not None:
        if not args.host:
            raise ConfigError("--host", "must not be empty")
        tcp["host"], flag_for["host"] = args.host, "--host"
    if args.port is not None:
        if not 0 <= args.port <= 65535:
            raise ConfigError("--port", f"must be an integer in 0..65535, not {args.port}")
        tcp["port"], flag_for["port"] = args.port, "--port"
    if args.ws_path is not None:
        tcp["websocket"] = check_http_path(args.ws_path, "--ws-path")
        flag_for["websocket"] = "--ws-path"
    if args.lp_path is not None:
        tcp["longpoll"] = check_http_path(args.lp_path, "--lp-path")
        flag_for["longpoll"] = "--lp-path"
    if args.no_websocket:
        tcp["websocket"], flag_for["websocket"] = None, "--no-websocket"
    if args.no_longpoll:
        tcp["longpoll"], flag_for["longpoll"] = None, "--no-longpoll"
    if args.no_rawsocket:
        tcp["rawsocket"], flag_for["rawsocket"] = False, "--no-rawsocket"
    if tcp:
        index = next((i for i, x in enumerate(listeners) if isinstance(x, TcpListener)), None)
        if index is None:
            flag = next(iter(flag_for.values()))
            raise ConfigError(flag, "the configuration has no tcp listener to apply it to")
        listeners[index] = dataclasses.replace(listeners[index], **tcp)

    if args.no_unix:
        listeners = [x for x in listeners if not isinstance(x, UnixListener)]
    elif args.unix is not None:
        if not args.unix:
            raise ConfigError("--unix", "must not be empty")
        index = next((i for i, x in enumerate(listeners) if isinstance(x, UnixListener)), None)
        if index is None:
            listeners.append(UnixListener(args.unix, where=f"listeners[{len(listeners)}]"))
        else:
            listeners[index] = dataclasses.replace(listeners[index], path=args.unix)

    realms = config.realms
    if args.realm:
        names = [realm_name(name, "--realm") for name in args.realm]
        # With --config the file's realms stay as they are (secured ones too).
        base = config.realms if args.config else ()
        known = {realm.name for realm in base}
        added = [RealmConfig(name) for name in dict.fromkeys(names) if name not in known]
        realms = (*base, *added)

    limits = config.limits
    if args.queue_size is not None:
        if args.queue_size < 1:
            raise ConfigError("--queue-size", f"must be an integer >= 1, not {args.queue_size}")
        limits = dataclasses.replace(limits, queue_size=args.queue_size)
    if args.slow_consumer is not None:
        limits = dataclasses.replace(limits, slow_consumer=args.slow_consumer)
    if args.limit:
        limits = _apply_limit_flags(limits, args.limit)

    return config.replace(
        listeners=tuple(listeners),
        realms=realms,
        limits=limits,
        log_level=args.log_level or config.log_level,
    )


def _apply_limit_flags(limits: Limits, items: Sequence[str]) -> Limits:
    """``limits`` with the ``--limit KEY=VALUE`` flags applied (validated as the
    file's ``[limits]`` keys; a VALUE that is not TOML is a string)."""
    table: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError("--limit", f"expected KEY=VALUE, not {item!r}")
        try:
            table[key] = tomllib.loads(f"value = {text}")["value"]
        except tomllib.TOMLDecodeError:
            table[key] = text.strip()
    try:
        parsed = parse_limits(table, where="")
    except ConfigError as exc:
        raise ConfigError(f"--limit {exc.key}", exc.problem) from None
    return dataclasses.replace(limits, **{key: getattr(parsed, key) for key in table})


async def run_router(
    config: RouterConfig,
    *,
    out: IO[str] | None = None,
    task_status: trio.TaskStatus[list[Endpoint]] = trio.TASK_STATUS_IGNORED,
) -> int:
    """Serve ``config`` until SIGINT or SIGTERM, then shut down cleanly (every
    session gets GOODBYE ``wamp.close.system_shutdown``); return the exit status.

    Prints one ``listening: URL`` line per endpoint on ``out`` (default stdout)
    once bound, and hands the endpoints to ``task_status``.
    """
    out = sys.stdout if out is None else out
    router = build_router(config)
    limits = config.limits
    host = RouterHost(
        router,
        queue_size=limits.queue_size,
        slow_consumer=limits.slow_consumer,
        shutdown_timeout=config.shutdown_timeout,
        keepalive_interval=limits.keepalive_interval,
        keepalive_timeout=limits.keepalive_timeout,
        rawsocket_pings=limits.rawsocket_pings,
    )
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            serve = functools.partial(
                serve_router,
                host,
                config.listeners,
                max_message_size=limits.max_message_size,
                handshake_timeout=limits.handshake_timeout,
                longpoll_idle_timeout=limits.longpoll_idle_timeout,
                websocket_max_message_size=limits.websocket_max_message_size,
                rawsocket_max_message_size=limits.rawsocket_max_message_size,
                longpoll_max_body_size=limits.longpoll_max_body_size,
            )
            try:
                endpoints: list[Endpoint] = await nursery.start(serve)
            except Exception as exc:
                error = _find(exc, OSError)
                if error is None:
                    raise
                print(f"wampcore router: error: cannot listen: {error}", file=sys.stderr)
                return 1
            for endpoint in endpoints:
                print(f"listening: {endpoint}", file=out, flush=True)
            task_status.started(endpoints)
            signum = await _next(signals)
            log.info("%s received: shutting down", signal.Signals(signum).name)
            forced = await _shutdown(host, signals)
            nursery.cancel_scope.cancel()
    return 1 if forced else 0


async def _next(signals: AsyncIterator[int]) -> int:
    async for signum in signals:
        return signum
    raise AssertionError("the signal receiver ended")  # pragma: no cover


async def _shutdown(host: RouterHost, signals: AsyncIterator[int]) -> bool:
    """``host.shutdown()``, cut short by a second signal; True when it was."""
    forced = False

    async def force(scope: trio.CancelScope) -> None:
        nonlocal forced
        await _next(signals)
        log.warning("second signal: closing every connection now")
        forced = True
        scope.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(force, nursery.cancel_scope)
        await host.shutdown()
        nursery.cancel_scope.cancel()
    return forced


def _find(exc: BaseException, kind: type[OSError]) -> OSError | None:
    """The first ``kind`` inside ``exc``, looking into exception groups."""
    if isinstance(exc, kind):
        return exc
    for inner in getattr(exc, "exceptions", ()):
        found = _find(inner, kind)
        if found is not None:
            return found
    return None


# -- wampcore call / publish / subscribe / register -------------------------------------------


def parse_value(text: str) -> Any:
    """A command-line value: JSON when it parses as JSON, else the string itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_kwargs(items: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` items as a dict (values parsed by ``parse_value``)."""
    kwargs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise _UsageError(f"--kw {item!r}: expected KEY=VALUE")
        kwargs[key] = parse_value(value)
    return kwargs


def to_json(value: Any) -> str:
    """``value`` as one line of JSON; bytes as WAMP's JSON does (``"\\u0000"+base64``)."""

    def default(obj: object) -> str:
        if isinstance(obj, (bytes, bytearray)):
            return "\0" + base64.b64encode(obj).decode("ascii")
        raise TypeError(f"{type(obj).__name__} is not JSON serializable")

    return json.dumps(value, default=default, ensure_ascii=False)


def _client_command(args: argparse.Namespace) -> int:
    prog = f"wampcore {args.command}"
    try:
        status: int = trio.run(_run_client, args)
    except _UsageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except _Failure as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    return status


class _Failure(Exception):
    """A runtime failure of a client command: one line on stderr, exit status 1."""


async def _run_client(args: argparse.Namespace) -> int:
    """Run ``args.action`` until it returns or SIGINT/SIGTERM stops it; turn the
    client's exceptions into ``_UsageError`` (exit 2) or ``_Failure`` (exit 1)."""
    status = 0
    failure: Exception | None = None
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def stop_on_signal() -> None:
                nonlocal status
                await _next(signals)
                status = args.interrupted_status
                nursery.cancel_scope.cancel()

            async def action() -> None:
                nonlocal status, failure
                try:
                    status = await args.action(args)
                except Exception as exc:
                    failure = _translate(exc, args)
                nursery.cancel_scope.cancel()

            nursery.start_soon(stop_on_signal)
            nursery.start_soon(action)
    if failure is not None:
        raise failure
    if status == _INTERRUPTED:
        raise _Failure("interrupted")
    return status


_INTERRUPTED = -1


def _translate(exc: Exception, args: argparse.Namespace) -> Exception:
    """Map what the client raised to a one-line ``_UsageError`` or ``_Failure``."""
    leaf = _leaf(exc)
    if isinstance(leaf, (_UsageError, _Failure)):
        return leaf
    if isinstance(leaf, ApplicationError):
        text = leaf.error
        if leaf.args:
            first = leaf.args[0]
            rest = " ".join(to_json(a) for a in leaf.args[1:])
            text += f": {first if isinstance(first, str) else to_json(first)}"
            text += f" {rest}" if rest else ""
        if leaf.kwargs:
            text += f" {to_json(leaf.kwargs)}"
        return _Failure(text)
    if isinstance(leaf, JoinError):
        return _Failure(f"cannot join realm {args.realm!r}: {leaf}")
    if isinstance(leaf, TransportLost):
        return _Failure(f"{args.url}: {leaf.message}")
    if isinstance(leaf, SessionEnded):
        return _Failure(f"the session ended: {leaf}")
    if isinstance(leaf, wamp_core.LocalProtocolError):
        return _UsageError(str(leaf))
    if isinstance(leaf, ValueError):  # an unknown URL scheme, a bad serializer name
        return _UsageError(str(leaf))
    if isinstance(leaf, TransportClosed):  # the handshake failed; the cause says why
        cause = leaf.__cause__
        detail = f"{leaf}: {cause}" if cause is not None else str(leaf)
        return _Failure(f"cannot connect to {args.url}: {detail}")
    if isinstance(leaf, OSError):
        return _Failure(f"cannot connect to {args.url}: {leaf}")
    return exc


def _leaf(exc: BaseException) -> BaseException:
    """The one exception inside nested single-member exception groups."""
    while True:
        inner = getattr(exc, "exceptions", None)
        if not inner or len(inner) != 1:
            return exc
        exc = inner[0]


def _payload(args: argparse.Namespace) -> tuple[list[Any], dict[str, Any]]:
    return [parse_value(a) for a in args.args], parse_kwargs(args.kw)


def _result_json(value: Any) -> Any:
    """A call's result for printing: the value itself, or ``{"args", "kwargs"}``."""
    if isinstance(value, CallResult):
        return {"args": list(value.args), "kwargs": value.kwargs}
    return value


def _connect(args: argparse.Namespace) -> Any:
    return connect(args.url, args.realm, serializer=args.serializer)


async def _call(args: argparse.Namespace) -> int:
    values, kwargs = _payload(args)
    async with _connect(args) as session:
        result = await session.call(args.procedure, *values, **kwargs)
    print(to_json(_result_json(result)), flush=True)
    return 0


async def _publish(args: argparse.Namespace) -> int:
    values, kwargs = _payload(args)
    async with _connect(args) as session:
        await session.publish(args.topic, *values, acknowledge=True, **kwargs)
    return 0


async def _subscribe(args: argparse.Namespace) -> int:
    if args.count is not None and args.count < 1:
        raise _UsageError(f"--count must be at least 1, not {args.count}")
    received = 0
    async with _connect(args) as session:
        subscription = await session.subscribe(
            args.topic, match=args.match, queue_size=args.queue_size
        )
        print(f"subscribed: {args.topic}", file=sys.stderr, flush=True)
        async for event in subscription:
            line = {"topic": event.topic, "args": list(event.args), "kwargs": event.kwargs}
            print(to_json(line), flush=True)
            received += 1
            if received == args.count:
                break
    return 0


async def _register(args: argparse.Namespace) -> int:
    if args.count is not None and args.count < 1:
        raise _UsageError(f"--count must be at least 1, not {args.count}")
    reply = None if args.reply is None else parse_value(args.reply)
    done = trio.Event()
    calls = 0

    def handler(*values: Any, **kwargs: Any) -> Any:
        # Synchronous on purpose: the answer is queued before anyone else runs,
        # so leaving after the last one cannot overtake it.
        nonlocal calls
        calls += 1
        print(to_json({"args": list(values), "kwargs": kwargs}), flush=True)
        if calls == args.count:
            done.set()
        return CallResult(*values, **kwargs) if args.echo else reply

    async with _connect(args) as session:
        await session.register(args.procedure, handler, match=args.match)
        print(f"registered: {args.procedure}", file=sys.stderr, flush=True)
        await done.wait()
    return 0
