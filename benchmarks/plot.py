#!/usr/bin/env python
"""Plot a ``benchmarks/compare.py`` results file.

``python benchmarks/plot.py RESULTS.json OUT.png [--combo ws/json]``

One figure, three panels of grouped bars (one bar per router): RPC throughput at 1, 10 and
200 outstanding calls, fan-out events/s at 10 and 100 subscribers, and sequential RPC
latency (p50, p99), all on one transport/serializer (default ws/json, which every router
offers). Needs matplotlib (``pip install -e '.[bench]'``); it is imported only when
plotting, so that ``compare.py`` and its test do not need it.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from collections.abc import Sequence
from typing import Any

ROUTER_ORDER = ("wampcore", "crossbar", "xconn")
COLOURS = {"wampcore": "#1f77b4", "crossbar": "#ff7f0e", "xconn": "#2ca02c"}


def panels(combo: str) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(title, y label, [(group label, figure id)]) per panel, for ``combo``."""
    tag = combo.replace("/", "-")
    return [
        (
            "RPC throughput (100 B)",
            "calls/s (higher is better)",
            [
                (f"{n} outstanding", f"rpc-throughput/o={n}/p=100/{tag}/calls_per_s")
                for n in (1, 10, 200)
            ],
        ),
        (
            "Fan-out",
            "events delivered/s (higher is better)",
            [(f"{n} subscribers", f"fanout/s={n}/{tag}/events_per_s") for n in (10, 100)],
        ),
        (
            "Sequential RPC latency",
            "microseconds (lower is better)",
            [(p, f"rpc-latency/{tag}/latency_us.{p}") for p in ("p50", "p99")],
        ),
    ]


def plot(results: dict[str, Any], out: pathlib.Path, combo: str = "ws/json") -> None:
    """Write the figure for ``results`` (a compare.py JSON document) to ``out``."""
    import matplotlib  # noqa: PLC0415 (optional: only when plotting)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figures = {row["id"]: row for row in results["figures"]}
    present = {router for row in results["figures"] for router in row["values"]}
    routers = [router for router in ROUTER_ORDER if router in present]
    layout = panels(combo)
    fig, axes = plt.subplots(
        1, len(layout), figsize=(15, 5.2), gridspec_kw={"width_ratios": [3, 2, 2]}
    )
    width = 0.8 / max(1, len(routers))
    for axis, (title, ylabel, groups) in zip(axes, layout):
        top = 0.0
        for index, router in enumerate(routers):
            xs, heights, labels = [], [], []
            for position, (_, figure_id) in enumerate(groups):
                value = figures.get(figure_id, {}).get("values", {}).get(router)
                xs.append(position + (index - (len(routers) - 1) / 2) * width)
                heights.append(value or 0.0)
                labels.append("n/a" if value is None else f"{value:,.0f}")
                top = max(top, value or 0.0)
            bars = axis.bar(xs, heights, width, label=router, color=COLOURS.get(router))
            axis.bar_label(bars, labels=labels, fontsize=7, rotation=90, padding=2)
        axis.set_title(f"{title} [{combo}]")
        axis.set_ylabel(ylabel)
        axis.set_xticks(range(len(groups)), [label for label, _ in groups])
        axis.set_ylim(0, top * 1.3 if top else 1)
        axis.grid(axis="y", alpha=0.3)
        axis.legend(fontsize=8)
    machine = results.get("machine", {})
    fig.suptitle(
        f"WAMP routers side by side, {results.get('date', '?')[:10]}: median of"
        f" {results.get('plan', {}).get('runs', '?')} runs,"
        f" {machine.get('nproc', '?')} CPUs ({machine.get('cpu', '?')}),"
        f" Python {machine.get('python', '?')}"
    )
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/plot.py", description=__doc__)
    parser.add_argument("results", type=pathlib.Path, help="a compare.py results JSON file")
    parser.add_argument("out", type=pathlib.Path, help="the PNG to write")
    parser.add_argument("--combo", default="ws/json", help="transport/serializer (ws/json)")
    args = parser.parse_args(argv)
    plot(json.loads(args.results.read_text()), args.out, args.combo)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
