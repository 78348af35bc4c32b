"""wamp_bench: a load generator measuring any WAMP router at a URL.

``wampcore bench URL --workload rpc-latency|rpc-throughput|fanout|idle`` (or
``python -m wamp_bench``) drives ``wamp_core.ClientSession`` directly from
several worker processes and reports latency percentiles, rates and memory per
session; ``--workload echo-rpc`` measures the bare trio echo server of
``wamp_bench._echo`` (also ``python -m wamp_bench.echo``), the ceiling a router
is compared with. See docs/bench.md.
"""

from ._cli import add_arguments, main, run_command
from ._echo import echo_connection, serve_echo
from ._load import WORKLOADS, BenchConfig, Report, run_benchmark

__all__ = [
    "WORKLOADS",
    "BenchConfig",
    "Report",
    "add_arguments",
    "echo_connection",
    "main",
    "run_benchmark",
    "run_command",
    "serve_echo",
]
