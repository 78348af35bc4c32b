"""Latency samples and their summary (percentiles in microseconds)."""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable

__all__ = ["MAX_SAMPLES", "Recorder", "latency_summary", "percentile", "read_rss"]

MAX_SAMPLES = 2_000_000
"""Samples one recorder keeps; later ones are counted but not kept."""


class Recorder:
    """Latency samples in nanoseconds (a compact array, capped at ``limit``)."""

    __slots__ = ("count", "limit", "samples")

    def __init__(self, limit: int = MAX_SAMPLES) -> None:
        self.samples = array("q")
        self.count = 0
        self.limit = limit

    def add(self, nanoseconds: int) -> None:
        """Record one sample."""
        self.count += 1
        if len(self.samples) < self.limit:
            self.samples.append(nanoseconds)


def percentile(ordered: list[int], fraction: float) -> int:
    """The nearest-rank percentile of the sorted, non-empty ``ordered``."""
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def latency_summary(parts: Iterable[array[int]]) -> dict[str, float | int] | None:
    """min, mean, p50, p90, p99, p99.9 and max of the samples in ``parts``
    (nanoseconds) in microseconds, with their number; None without samples."""
    ordered: list[int] = []
    for part in parts:
        ordered.extend(part)
    if not ordered:
        return None
    ordered.sort()

    def us(value: float) -> float:
        return round(value / 1000, 1)

    return {
        "samples": len(ordered),
        "min": us(ordered[0]),
        "mean": us(sum(ordered) / len(ordered)),
        "p50": us(percentile(ordered, 0.50)),
        "p90": us(percentile(ordered, 0.90)),
        "p99": us(percentile(ordered, 0.99)),
        "p999": us(percentile(ordered, 0.999)),
        "max": us(ordered[-1]),
    }


def read_rss(pids: Iterable[int]) -> int:
    """The summed resident set size (VmRSS) of ``pids`` in bytes, from /proc.
    Raises ``OSError`` when a process is gone, ``ValueError`` when it has no VmRSS."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as file:
            for line in file:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    break
            else:
                raise ValueError(f"process {pid} reports no VmRSS (a zombie?)")
    return total
