"""``benchmarks/compare.py --quick``: the side-by-side comparison once, at a tiny scale,
against our router only (CI runs the benchmark). Checks the JSON document and the table's
rows, never the timing figures' values."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMPARE = ROOT / "benchmarks" / "compare.py"

#: The figures of --quick (ws/json), by id, with their table labels.
QUICK_FIGURES = {
    "rpc-latency/ws-json/latency_us.p50": "sequential RPC latency: p50 [ws/json] (us)",
    "rpc-latency/ws-json/latency_us.p99": "sequential RPC latency: p99 [ws/json] (us)",
    "rpc-throughput/o=10/p=100/ws-json/calls_per_s": (
        "RPC throughput, 10 outstanding: calls/s [ws/json] (calls/s)"
    ),
    "fanout/s=10/ws-json/events_per_s": "fan-out, 10 subscribers: events/s [ws/json] (events/s)",
    "fanout/s=10/ws-json/latency_us.p99": "fan-out, 10 subscribers: delivery p99 [ws/json] (us)",
    "idle/n=50/ws-json/rss_delta_per_session": ("idle, 50 sessions: RSS/session [ws/json] (bytes)"),
    "echo-rpc/o=10/p=100/ws-json/calls_per_s": (
        "echo ceiling, 10 outstanding: calls/s [ws/json] (calls/s)"
    ),
    "rpc-throughput/o=10/p=100/ws-json/calls_per_s/share_of_echo": (
        "RPC throughput, 10 outstanding: share of echo ceiling [ws/json]"
    ),
}


def test_quick_comparison_of_our_router(tmp_path: Path) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            str(COMPARE),
            "--quick",
            "--routers",
            "wampcore",
            "--runs",
            "1",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]

    (path,) = tmp_path.glob("results-*.json")
    document = json.loads(path.read_text())
    assert document["plan"]["quick"] is True
    assert document["plan"]["routers"] == ["wampcore"]
    assert {"nproc", "cpu", "python"} <= document["machine"].keys()
    rows = {row["id"]: row for row in document["figures"]}
    assert rows.keys() == QUICK_FIGURES.keys()
    for figure_id, row in rows.items():
        owner = "echo" if figure_id.startswith("echo-rpc/") else "wampcore"
        assert row["values"][owner] is not None, (figure_id, row["errors"])
        assert row["values"][owner] > 0
        assert not row["errors"], row["errors"]
    share = rows["rpc-throughput/o=10/p=100/ws-json/calls_per_s/share_of_echo"]["values"][
        "wampcore"
    ]
    assert share > 0
    # every run's raw report is kept
    raw = {(entry["router"], entry["measurement"]): entry["runs"] for entry in document["raw"]}
    assert len(raw) == 5
    for runs in raw.values():
        assert len(runs) == 1
        assert runs[0]["ok"], runs[0]["error"]
        assert runs[0]["report"]["results"]
    idle = raw["wampcore", "idle/n=50/ws-json"][0]["report"]
    assert idle["parameters"]["router_pids"]  # the router's process was found
    assert idle["results"]["connected"] == 50

    table = completed.stdout
    assert "| figure | wampcore |" in table
    assert "> 1 means wampcore is better" in table
    for label in QUICK_FIGURES.values():
        assert f"| {label} |" in table, label
    assert "n/a" not in table
