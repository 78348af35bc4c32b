"""``benchmarks/soak.py`` at a tiny scale: against its own router (the verdict must be
PASS, the table there), against an external one (``--url``), and its verdict rules.
Nothing here asserts on timing."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import trio

from tests.conformance.harness import running

ROOT = Path(__file__).resolve().parents[2]
SOAK = ROOT / "benchmarks" / "soak.py"
TINY = ["--duration", "1.5", "--clients", "4", "--workers", "1", "--report-every", "1"]


def load_soak() -> ModuleType:
    spec = importlib.util.spec_from_file_location("soak", SOAK)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["soak"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_a_tiny_soak_of_its_own_router_passes() -> None:
    completed = subprocess.run(
        [sys.executable, str(SOAK), *TINY, "--warmup", "0.5", "--settle", "20"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    out = completed.stdout
    assert completed.returncode == 0, out + completed.stderr[-3000:]
    assert "verdict: PASS (router back to its baseline)" in out
    assert "| phase    |" in out
    rows = {phase: line for line in out.splitlines() for phase in ("baseline", "after")
            if line.startswith("|") and f"| {phase}" in line}  # fmt: skip
    assert rows.keys() == {"baseline", "after"}
    assert rows["after"].endswith("| - |")  # no table left non-empty
    churned = re.search(r"churned \d+ s: (\d+) sessions joined, (\d+) calls", out)
    assert churned is not None
    assert int(churned[1]) > 0
    assert int(churned[2]) > 0
    assert "0 unexpected client errors" in out
    assert re.search(r"RSS MB baseline/peak/after: [\d.]+/[\d.]+/[\d.]+", out)


async def test_a_tiny_soak_of_an_external_router() -> None:
    async with running() as urls:
        completed = await trio.run_process(
            [sys.executable, str(SOAK), *TINY, "--warmup", "0", "--url", urls["rawsocket"]],
            cwd=ROOT,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    out = completed.stdout.decode()
    assert completed.returncode == 0, out + completed.stderr.decode()[-3000:]
    assert "verdict: PASS (client side only)" in out
    assert "RSS MB" not in out  # no router figures for a router elsewhere
    assert "| phase" not in out
    assert re.search(r"churned \d+ s: [1-9]\d* sessions joined", out)


def test_the_verdict_fails_on_anything_left_behind() -> None:
    soak = load_soak()
    baseline = soak.Sample(0.0, "baseline", 0, 0, 0, 100 * 2**20, 9, 0, {"sessions": 0})
    figures = soak.Figures(joined=10, calls=10)

    def after(**changes: Any) -> Any:
        fields: dict[str, Any] = {
            "rss": 100 * 2**20,
            "tasks": 9,
            "connections": 0,
            "tables": {"sessions": 0},
        }
        fields.update(changes)
        return soak.Sample(at=9.0, phase="after", joined=10, calls=10, events=0, **fields)

    assert soak.verdict(baseline, after(), figures) == (True, [])
    assert soak.verdict(baseline, after(rss=109 * 2**20), figures)[0]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"rss": 111 * 2**20}, "RSS"),
        ({"tasks": 10}, "tasks 10 != baseline 9"),
        ({"connections": 1}, "connections 1 != baseline 0"),
        ({"tables": {"sessions": 0, "calls": 1}}, "tables not empty: {'calls': 1}"),
    ]
    for changes, reason in cases:
        ok, problems = soak.verdict(baseline, after(**changes), figures)
        assert not ok
        assert reason in problems[0]
    assert soak.verdict(baseline, None, figures) == (
        False,
        ["the router's figures are missing (baseline or after)"],
    )
    assert soak.verdict(None, None, figures, external=True) == (True, [])
    failed = soak.Figures(joined=10, errors=1, first_errors=["clean: OSError: boom"])
    ok, problems = soak.verdict(baseline, after(), failed)
    assert not ok
    assert "OSError: boom" in problems[0]
