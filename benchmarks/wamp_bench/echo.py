"""``python -m wamp_bench.echo [--host H] [--port P] [--unix PATH]``: run the
bare echo router (see ``wamp_bench._echo``) until SIGINT or SIGTERM.

Prints one ``listening: URL`` line per endpoint (``ws://``, ``rs://``, and
``unix://`` with ``--unix``), then serves; point ``wampcore bench URL
--workload rpc-latency`` (or ``rpc-throughput``) at one of them.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

import trio

from ._echo import serve_echo
from ._worker import describe

__all__ = ["main"]


async def _serve(host: str, port: int, unix: str | None) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(serve_echo, host, port, unix)
            for url in urls.values():
                print(f"listening: {url}", flush=True)
            async for _ in signals:
                break
            nursery.cancel_scope.cancel()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the echo router; the exit status (1 when it cannot listen)."""
    parser = argparse.ArgumentParser(
        prog="python -m wamp_bench.echo",
        description="A bare trio WAMP echo router (HELLO->WELCOME, CALL->RESULT with the"
        " same arguments, no routing): the ceiling for wampcore bench.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="default 0: a free port")
    parser.add_argument("--unix", metavar="PATH", help="also serve RawSocket on this Unix socket")
    args = parser.parse_args(argv)
    try:
        trio.run(_serve, args.host, args.port, args.unix)
    except Exception as exc:  # OSError (a port taken), maybe inside an exception group
        print(f"{parser.prog}: error: cannot listen: {describe(exc)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
