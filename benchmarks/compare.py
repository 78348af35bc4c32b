#!/usr/bin/env python
"""Side-by-side comparison of WAMP routers with the ``wamp_bench`` load generator.

``python benchmarks/compare.py [--routers wampcore,crossbar,xconn] [--runs 3] [--quick]``

Run by run (``--runs`` times), the echo server and then each router in turn, on a fresh
process (``tests/interop/routers.py``'s launchers): the same workloads with the same
parameters; keep the MEDIAN of each figure. ``idle`` gets a fresh router process per
measurement (Python keeps freed memory), with ``--router-pid`` for every process of the
router (for Crossbar the controller and its workers). The bare echo server (``echo-rpc``,
ws/json and rs/msgpack) is measured too: the ceiling each router's RPC throughput is
compared with.

Every workload runs as ``python -m wamp_bench ... --json`` in its own process group, killed
after a timeout; a router that cannot start or fails a workload gets "n/a" with the reason,
and the comparison goes on. Writes ``results-<date>.json`` (every run's raw report and the
medians) to ``--out`` and prints a Markdown table. Crossbar and xconn are found as the
launchers find them: ``$CROSSBAR`` and ``$WAMPCORE_XCONN`` (or ``--crossbar``/``--xconn``).
See docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import pathlib
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "results"
ROUTERS = ("wampcore", "crossbar", "xconn")
#: The transport/serializer combinations measured, among those a router offers.
COMBOS = (("ws", "json"), ("ws", "msgpack"), ("rs", "msgpack"))
#: The echo server's combinations (the ceiling).
ECHO_COMBOS = (("ws", "json"), ("rs", "msgpack"))
ROUTER_START_TIMEOUT = 150.0  # seconds; the launchers have their own bounds (60 s, 120 s)
WORKLOAD_SLACK = 45.0  # seconds added to a workload's own length before it is killed
CONNECT_TIMEOUT = 60.0  # the generator's --timeout

Launcher = Callable[[pathlib.Path], contextlib.AbstractContextManager[dict[str, str]]]


# --------------------------------------------------------------------------- options


@dataclasses.dataclass(frozen=True)
class Plan:
    """What to measure (the command's options, after ``--quick``)."""

    routers: tuple[str, ...]
    runs: int
    idle_runs: int
    combos: tuple[tuple[str, str], ...]
    echo_combos: tuple[tuple[str, str], ...]
    count: int
    warmup: float
    duration: float
    fanout_duration: float
    outstanding: tuple[int, ...]
    payloads: tuple[int, ...]
    payload_outstanding: int
    subscribers: tuple[int, ...]
    sessions: tuple[int, ...]
    hold: float
    processes: int
    quick: bool


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of integers: {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers: {text!r}")
    return values


def _combos(text: str) -> tuple[tuple[str, str], ...]:
    combos = []
    for part in text.split(","):
        transport, _, serializer = part.strip().partition("/")
        if transport not in ("ws", "rs") or serializer not in ("json", "msgpack", "cbor"):
            raise argparse.ArgumentTypeError(f"expected ws|rs/json|msgpack|cbor: {part!r}")
        combos.append((transport, serializer))
    return tuple(combos)


def _routers(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in ROUTERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"routers are among {', '.join(ROUTERS)}: {text!r}")
    return names


def parse_arguments(argv: Sequence[str] | None = None) -> tuple[Plan, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/compare.py",
        description="Compare WAMP routers side by side with wamp_bench (docs/performance.md).",
    )
    parser.add_argument("--routers", type=_routers, default=ROUTERS, help="default: all three")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median; default 3)")
    parser.add_argument("--idle-runs", type=int, help="runs per idle figure (default --runs)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a small subset for CI: ws/json rpc-latency (200 calls), rpc-throughput"
        " (10 outstanding, 1 s), fanout (10 subscribers, 1 s), idle (50 sessions), echo",
    )
    parser.add_argument(
        "--combos",
        type=_combos,
        default=COMBOS,
        help="transport/serializer pairs (default ws/json,ws/msgpack,rs/msgpack)",
    )
    parser.add_argument("--count", type=int, default=2000, help="rpc-latency calls (2000)")
    parser.add_argument("--warmup", type=float, default=1.0, help="timed warm-up, s (1)")
    parser.add_argument("--duration", type=float, default=3.0, help="timed window, s (3)")
    parser.add_argument("--fanout-duration", type=float, help="fanout window, s (--duration)")
    parser.add_argument("--outstanding", type=_ints, default=(1, 10, 200), help="1,10,200")
    parser.add_argument(
        "--payloads",
        type=_ints,
        default=(100, 10240, 1048576),
        help="bytes, rpc-throughput at --payload-outstanding (100,10240,1048576)",
    )
    parser.add_argument("--payload-outstanding", type=int, default=10, help="(10)")
    parser.add_argument("--subscribers", type=_ints, default=(1, 10, 100, 1000), help="fanout")
    parser.add_argument("--sessions", type=_ints, default=(1000, 10000), help="idle sessions")
    parser.add_argument("--hold", type=float, default=3.0, help="idle hold, s (3)")
    parser.add_argument("--processes", type=int, default=2, help="generator processes (2)")
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT, help="results dir")
    parser.add_argument("--crossbar", help="crossbar executable (sets $CROSSBAR)")
    parser.add_argument("--xconn", help="xconn's xcorn command line (sets $WAMPCORE_XCONN)")
    args = parser.parse_args(argv)
    if args.runs < 1 or (args.idle_runs is not None and args.idle_runs < 1):
        parser.error("--runs and --idle-runs must be at least 1")
    if args.quick:
        plan = Plan(
            routers=args.routers,
            runs=args.runs,
            idle_runs=args.idle_runs or args.runs,
            combos=(("ws", "json"),),
            echo_combos=(("ws", "json"),),
            count=200,
            warmup=0.3,
            duration=1.0,
            fanout_duration=1.0,
            outstanding=(10,),
            payloads=(100,),
            payload_outstanding=10,
            subscribers=(10,),
            sessions=(50,),
            hold=0.5,
            processes=2,
            quick=True,
        )
    else:
        plan = Plan(
            routers=args.routers,
            runs=args.runs,
            idle_runs=args.idle_runs or args.runs,
            combos=args.combos,
            echo_combos=tuple(c for c in ECHO_COMBOS if c in args.combos) or ECHO_COMBOS[:1],
            count=args.count,
            warmup=args.warmup,
            duration=args.duration,
            fanout_duration=args.fanout_duration or args.duration,
            outstanding=args.outstanding,
            payloads=args.payloads,
            payload_outstanding=args.payload_outstanding,
            subscribers=args.subscribers,
            sessions=args.sessions,
            hold=args.hold,
            processes=args.processes,
            quick=False,
        )
    return plan, args


# --------------------------------------------------------------------------- figures


@dataclasses.dataclass(frozen=True)
class Stat:
    """One figure read from a report's results: ``path`` into the JSON."""

    name: str
    path: tuple[str, ...]
    unit: str
    higher_is_better: bool


CALLS = Stat("calls/s", ("calls_per_s",), "calls/s", True)
P50 = Stat("p50", ("latency_us", "p50"), "us", False)
P99 = Stat("p99", ("latency_us", "p99"), "us", False)
EVENTS = Stat("events/s", ("events_per_s",), "events/s", True)
DELIVERY_P99 = Stat("delivery p99", ("latency_us", "p99"), "us", False)
RSS = Stat("RSS/session", ("rss_delta_per_session",), "bytes", False)


@dataclasses.dataclass(frozen=True)
class Measurement:
    """A workload with its parameters, on one transport/serializer, and its figures."""

    mid: str  # e.g. "rpc-throughput/o=10/p=100/ws-json"
    label: str  # e.g. "RPC throughput, 10 outstanding, 100 B"
    workload: str
    transport: str
    serializer: str
    options: dict[str, Any]
    stats: tuple[Stat, ...]
    length: float  # seconds of load (for the timeout)

    @property
    def combo(self) -> str:
        return f"{self.transport}/{self.serializer}"

    def figure_id(self, stat: Stat) -> str:
        return f"{self.mid}/{stat.path[0]}" + (f".{stat.path[1]}" if len(stat.path) > 1 else "")


def _size(payload: int) -> str:
    if payload >= 2**20 and payload % 2**20 == 0:
        return f"{payload // 2**20} MB"
    if payload >= 1024 and payload % 1024 == 0:
        return f"{payload // 1024} KB"
    return f"{payload} B"


def router_measurements(plan: Plan, kinds: Sequence[str]) -> list[Measurement]:
    """The timed and sequential workloads for a router offering transports ``kinds``."""
    out: list[Measurement] = []
    timed = {"warmup": plan.warmup, "duration": plan.duration, "processes": plan.processes}
    for transport, serializer in plan.combos:
        if transport not in kinds:
            continue
        tag = f"{transport}-{serializer}"
        common = {"transport": transport, "serializer": serializer}
        out.append(
            Measurement(
                f"rpc-latency/{tag}",
                "sequential RPC latency",
                "rpc-latency",
                options={"count": plan.count},
                stats=(P50, P99),
                length=plan.count * 0.01,
                **common,
            )
        )
        for outstanding in plan.outstanding:
            out.append(
                Measurement(
                    f"rpc-throughput/o={outstanding}/p=100/{tag}",
                    f"RPC throughput, {outstanding} outstanding",
                    "rpc-throughput",
                    options={**timed, "outstanding": outstanding, "payload": 100},
                    stats=(CALLS,),
                    length=plan.warmup + plan.duration,
                    **common,
                )
            )
        for payload in plan.payloads:
            if payload == 100 and plan.payload_outstanding in plan.outstanding:
                continue  # measured above
            out.append(
                Measurement(
                    f"rpc-throughput/o={plan.payload_outstanding}/p={payload}/{tag}",
                    f"RPC throughput, {plan.payload_outstanding} outstanding, {_size(payload)}",
                    "rpc-throughput",
                    options={**timed, "outstanding": plan.payload_outstanding, "payload": payload},
                    stats=(CALLS,),
                    length=plan.warmup + plan.duration,
                    **common,
                )
            )
        for subscribers in plan.subscribers:
            out.append(
                Measurement(
                    f"fanout/s={subscribers}/{tag}",
                    f"fan-out, {subscribers} subscriber" + ("s" if subscribers != 1 else ""),
                    "fanout",
                    options={**timed, "duration": plan.fanout_duration, "subscribers": subscribers},
                    stats=(EVENTS, DELIVERY_P99),
                    length=plan.warmup + plan.fanout_duration,
                    **common,
                )
            )
    return out


def idle_measurements(plan: Plan, kinds: Sequence[str]) -> list[Measurement]:
    """``idle`` per transport (its first serializer in ``plan.combos``) and session count."""
    out: list[Measurement] = []
    seen: set[str] = set()
    for transport, serializer in plan.combos:
        if transport not in kinds or transport in seen:
            continue
        seen.add(transport)
        for sessions in plan.sessions:
            out.append(
                Measurement(
                    f"idle/n={sessions}/{transport}-{serializer}",
                    f"idle, {sessions} sessions",
                    "idle",
                    transport,
                    serializer,
                    options={"sessions": sessions, "hold": plan.hold, "processes": plan.processes},
                    stats=(RSS,),
                    length=plan.hold + sessions * 0.01,
                )
            )
    return out


def echo_measurements(plan: Plan) -> list[Measurement]:
    out = []
    for transport, serializer in plan.echo_combos:
        for outstanding in plan.outstanding:
            out.append(
                Measurement(
                    f"echo-rpc/o={outstanding}/p=100/{transport}-{serializer}",
                    f"echo ceiling, {outstanding} outstanding",
                    "echo-rpc",
                    transport,
                    serializer,
                    options={
                        "warmup": plan.warmup,
                        "duration": plan.duration,
                        "processes": plan.processes,
                        "outstanding": outstanding,
                        "payload": 100,
                        "echo-transport": transport,
                    },
                    stats=(CALLS,),
                    length=plan.warmup + plan.duration,
                )
            )
    return out


# --------------------------------------------------------------------------- running


def _stat_ppid(pid: int) -> int | None:
    try:
        text = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(text.rpartition(")")[2].split()[1])


def _children(pid: int) -> set[int]:
    found = set()
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit() and _stat_ppid(int(entry.name)) == pid:
            found.add(int(entry.name))
    return found


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    pending = [pid]
    while pending:
        for child in _children(pending.pop()):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found


def _launcher(router: str) -> Launcher:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.interop import routers  # noqa: PLC0415 (needs ROOT on sys.path first)

    launchers: dict[str, Launcher] = {
        "wampcore": routers.running_wampcore,
        "crossbar": routers.running_crossbar_open,
        "xconn": routers.running_xconn,
    }
    return launchers[router]


class RouterError(Exception):
    """The router could not be started."""


@contextlib.contextmanager
def running_router(router: str) -> Iterator[tuple[dict[str, str], list[int]]]:
    """Start ``router`` in a fresh directory: its URLs by kind, and the PIDs of all its
    processes (the launched process and its descendants, e.g. Crossbar's workers)."""
    import pytest  # noqa: PLC0415 (the launchers report failures with pytest.fail)

    with tempfile.TemporaryDirectory(prefix=f"compare-{router}-") as directory:
        before = _children(os.getpid())
        stack = contextlib.ExitStack()
        with stack:
            started = time.monotonic()
            try:
                urls = stack.enter_context(_launcher(router)(pathlib.Path(directory)))
            except (Exception, pytest.fail.Exception) as exc:
                message = str(exc).strip().splitlines()
                raise RouterError(
                    f"{router} did not start: {message[0] if message else exc!r}"
                ) from exc
            if time.monotonic() - started > ROUTER_START_TIMEOUT:
                raise RouterError(f"{router} took over {ROUTER_START_TIMEOUT} s to start")
            time.sleep(0.5)  # let worker processes settle (Crossbar)
            launched = _children(os.getpid()) - before
            pids = set(launched)
            for pid in launched:
                pids |= _descendants(pid)
            yield urls, sorted(pids)


@dataclasses.dataclass
class Outcome:
    """One run of a measurement: the generator's JSON report or why there is none."""

    ok: bool
    error: str | None
    report: dict[str, Any] | None
    seconds: float


def run_generator(arguments: list[str], timeout: float) -> Outcome:
    """``python -m wamp_bench ARGUMENTS --json`` in its own process group, killed (the
    whole group) after ``timeout`` seconds."""
    command = [sys.executable, "-m", "wamp_bench", *arguments, "--json"]
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return Outcome(False, f"timed out after {timeout:.0f} s", None, timeout)
    seconds = round(time.monotonic() - started, 2)
    try:
        report: dict[str, Any] = json.loads(stdout.decode(errors="replace").strip() or "null")
    except ValueError:
        report = None  # type: ignore[assignment]
    if not isinstance(report, dict):
        tail = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        return Outcome(False, f"exit {process.returncode}: {tail[0]}", None, seconds)
    return Outcome(bool(report.get("ok")), report.get("error"), report, seconds)


def generator_arguments(
    measurement: Measurement, url: str | None, router_pids: Sequence[int] = ()
) -> list[str]:
    arguments = [url] if url else []
    arguments += ["--workload", measurement.workload, "--serializer", measurement.serializer]
    for key, value in measurement.options.items():
        arguments += [f"--{key.replace('_', '-')}", str(value)]
    for pid in router_pids:
        arguments += ["--router-pid", str(pid)]
    return [*arguments, "--timeout", str(CONNECT_TIMEOUT)]


def _dig(results: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = results
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return float(value) if isinstance(value, (int, float)) else None


class Recorder:
    """Every run's outcome, by router and measurement id."""

    def __init__(self) -> None:
        self.runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.measurements: dict[str, Measurement] = {}

    def add(self, router: str, measurement: Measurement, outcome: Outcome) -> None:
        self.measurements[measurement.mid] = measurement
        record = dataclasses.asdict(outcome)
        self.runs.setdefault((router, measurement.mid), []).append(record)
        status = "ok" if outcome.ok else f"FAILED: {outcome.error}"
        print(
            f"  {router:9} {measurement.mid:42} {outcome.seconds:6.1f} s  {status}",
            file=sys.stderr,
            flush=True,
        )

    def fail_all(self, router: str, measurements: Sequence[Measurement], reason: str) -> None:
        for measurement in measurements:
            self.add(router, measurement, Outcome(False, reason, None, 0.0))


def measure(
    recorder: Recorder,
    router: str,
    measurement: Measurement,
    url: str | None,
    router_pids: Sequence[int] = (),
) -> None:
    arguments = generator_arguments(measurement, url, router_pids)
    timeout = measurement.length + CONNECT_TIMEOUT + WORKLOAD_SLACK
    recorder.add(router, measurement, run_generator(arguments, timeout))


def _url(urls: dict[str, str], transport: str) -> str:
    return urls[transport]


def run_router(recorder: Recorder, plan: Plan, router: str, run: int) -> list[str]:
    """Run ``run`` of the timed workloads on a fresh process of ``router``; the
    transports it offers."""
    print(f"{router}: run {run + 1} of {plan.runs}", file=sys.stderr, flush=True)
    try:
        with running_router(router) as (urls, _pids):
            kinds = sorted(urls)
            for measurement in router_measurements(plan, kinds):
                measure(recorder, router, measurement, _url(urls, measurement.transport))
    except RouterError as exc:
        kinds = [transport for transport, _ in plan.combos]
        recorder.fail_all(router, router_measurements(plan, kinds), str(exc))
    return kinds


def run_idle(recorder: Recorder, plan: Plan, router: str, kinds: list[str]) -> None:
    """Each idle measurement of ``router`` on a fresh process."""
    for measurement in idle_measurements(plan, kinds):
        for _ in range(plan.idle_runs):
            try:
                with running_router(router) as (urls, pids):
                    url = _url(urls, measurement.transport)
                    measure(recorder, router, measurement, url, pids)
            except RouterError as exc:
                recorder.add(router, measurement, Outcome(False, str(exc), None, 0.0))


# --------------------------------------------------------------------------- summary


def figure_rows(recorder: Recorder, plan: Plan) -> list[dict[str, Any]]:
    """One row per figure: the median per router (None with the reason when none)."""
    rows: list[dict[str, Any]] = []
    for mid, measurement in recorder.measurements.items():
        for stat in measurement.stats:
            row: dict[str, Any] = {
                "id": measurement.figure_id(stat),
                "measurement": mid,
                "label": f"{measurement.label}: {stat.name}",
                "workload": measurement.workload,
                "combo": measurement.combo,
                "unit": stat.unit,
                "higher_is_better": stat.higher_is_better,
                "values": {},
                "runs": {},
                "errors": {},
            }
            for router in ("echo", *plan.routers):
                runs = recorder.runs.get((router, mid))
                if runs is None:
                    continue
                values = [
                    _dig(run["report"]["results"], stat.path)
                    for run in runs
                    if run["ok"] and run["report"]
                ]
                good = [value for value in values if value is not None]
                errors = [run["error"] or "no figure" for run in runs if not run["ok"]]
                row["runs"][router] = values
                row["values"][router] = statistics.median(good) if good else None
                if errors:
                    row["errors"][router] = f"{len(errors)} of {len(runs)} runs failed: {errors[0]}"
                elif not good:
                    row["errors"][router] = "no figure in the report"
            rows.append(row)
    rows.extend(ceiling_rows(rows, plan))
    return rows


def ceiling_rows(rows: list[dict[str, Any]], plan: Plan) -> list[dict[str, Any]]:
    """Each router's RPC throughput (100 B) as a share of the echo ceiling on the same
    transport and serializer."""
    echo = {
        row["id"].removeprefix("echo-rpc/"): row for row in rows if row["workload"] == "echo-rpc"
    }
    out = []
    for row in rows:
        if row["workload"] != "rpc-throughput":
            continue
        ceiling_row = echo.get(row["id"].removeprefix("rpc-throughput/"))
        if ceiling_row is None or ceiling_row["values"].get("echo") is None:
            continue
        ceiling = ceiling_row["values"]["echo"]
        values = {
            router: (value / ceiling if value is not None and ceiling else None)
            for router, value in row["values"].items()
        }
        out.append(
            {
                "id": row["id"] + "/share_of_echo",
                "measurement": row["measurement"],
                "label": row["label"].replace(": calls/s", ": share of echo ceiling"),
                "workload": "share-of-echo",
                "combo": row["combo"],
                "unit": "share",
                "higher_is_better": True,
                "values": values,
                "runs": {},
                "errors": dict(row["errors"]),
            }
        )
    return out


def _format(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "share":
        return f"{value:.0%}"
    if unit in ("calls/s", "events/s") and value >= 100:
        return f"{value:,.0f}"
    if unit in ("us", "bytes"):
        return f"{value:,.0f}"
    return f"{value:.3g}"


def ratio(row: dict[str, Any], other: str) -> float | None:
    """wampcore versus ``other``, oriented so that > 1 means wampcore is better."""
    ours, theirs = row["values"].get("wampcore"), row["values"].get(other)
    if ours is None or theirs is None or ours <= 0 or theirs <= 0:
        return None
    return float(ours / theirs if row["higher_is_better"] else theirs / ours)


def table(rows: list[dict[str, Any]], plan: Plan) -> str:
    """The figures as a Markdown table, with the reasons for the "n/a"s below it."""
    routers = list(plan.routers)
    others = [router for router in routers if router != "wampcore"]
    header = ["figure", *routers]
    if "wampcore" in routers:
        header += [f"wampcore/{other}" for other in others]
    lines = [
        "Ratios are oriented so that > 1 means wampcore is better (throughputs: wampcore/other;"
        " latencies and memory: other/wampcore).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|",
    ]
    notes: list[str] = []
    ordered = [row for row in rows if row["workload"] != "echo-rpc"]
    ordered += [row for row in rows if row["workload"] == "echo-rpc"]
    for row in ordered:
        unit = row["unit"]
        label = f"{row['label']} [{row['combo']}]" + ("" if unit == "share" else f" ({unit})")
        if row["workload"] == "echo-rpc":
            cells = [label, *(_format(row["values"].get("echo"), unit) for _ in routers)]
            cells[1:] = [cells[1]] + [""] * (len(routers) - 1)
            cells += [""] * (len(header) - len(cells))
        else:
            cells = [label]
            for router in routers:
                if router not in row["values"]:
                    cells.append("-")  # the router does not offer this transport
                    continue
                text = _format(row["values"][router], unit)
                error = row["errors"].get(router)
                if error and row["workload"] != "share-of-echo":
                    notes.append(f"{router}, {row['label']} [{row['combo']}]: {error}")
                    text += f" [{len(notes)}]"
                cells.append(text)
            if "wampcore" in routers:
                for other in others:
                    value = ratio(row, other) if unit != "share" else None
                    cells.append("" if value is None else f"{value:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    if notes:
        lines += ["", *(f"[{n}] {note}" for n, note in enumerate(notes, 1))]
    lines += [
        "",
        "echo ceiling rows: the bare echo server (no routing), in the first router column;"
        ' "-": the router does not offer that transport.',
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- machine


def _version(executable: str | None, distribution: str) -> str:
    if not executable:
        return "not configured"
    python = pathlib.Path(shlex.split(executable)[0]).with_name("python")
    if not python.exists():
        return "unknown"
    try:
        found = subprocess.run(
            [
                str(python),
                "-c",
                f"import importlib.metadata as m; print(m.version({distribution!r}))",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return found.stdout.strip()


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "crossbar": _version(os.environ.get("CROSSBAR"), "crossbar"),
        "xconn": _version(os.environ.get("WAMPCORE_XCONN"), "xconn"),
    }


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    plan, args = parse_arguments(argv)
    if args.crossbar:
        os.environ["CROSSBAR"] = args.crossbar
    if args.xconn:
        os.environ["WAMPCORE_XCONN"] = args.xconn
    started = time.monotonic()
    now = datetime.datetime.now(datetime.timezone.utc)
    recorder = Recorder()
    echo = echo_measurements(plan)
    kinds: dict[str, list[str]] = {}
    # Run by run, every router in turn (a fresh process each): the machine's drift
    # over the whole comparison then weighs on every router alike.
    for run in range(plan.runs):
        print(f"echo ceiling: run {run + 1} of {plan.runs}", file=sys.stderr, flush=True)
        for measurement in echo:
            measure(recorder, "echo", measurement, None)
        for router in plan.routers:
            kinds[router] = run_router(recorder, plan, router, run)
    for router in plan.routers:
        run_idle(recorder, plan, router, kinds[router])
    rows = figure_rows(recorder, plan)
    elapsed = round(time.monotonic() - started, 1)
    document = {
        "date": now.isoformat(timespec="seconds"),
        "elapsed_s": elapsed,
        "machine": machine(),
        "plan": dataclasses.asdict(plan),
        "command": ["python", "benchmarks/compare.py", *(sys.argv[1:] if argv is None else argv)],
        "figures": rows,
        "raw": [
            {"router": router, "measurement": mid, "runs": runs}
            for (router, mid), runs in recorder.runs.items()
        ],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"results-{now.date().isoformat()}.json"
    path.write_text(json.dumps(document, indent=1) + "\n")
    print(table(rows, plan))
    print(f"\nresults: {path} ({elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
