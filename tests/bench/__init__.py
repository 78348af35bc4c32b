"""Tests of the benchmark load generator (wamp_bench).

The names under test are imported here, so that the test modules import them from
``tests.bench``: their import order is then the same whether ``wamp_bench`` is
known as first-party or not (it is not until it is an installed package).
"""

from wamp_bench import BenchConfig, Report, echo_connection, run_benchmark, serve_echo
from wamp_bench._stats import Recorder, latency_summary, percentile, read_rss

__all__ = [
    "BenchConfig",
    "Recorder",
    "Report",
    "echo_connection",
    "latency_summary",
    "percentile",
    "read_rss",
    "run_benchmark",
    "serve_echo",
]
