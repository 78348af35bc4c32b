"""What every fuzz target shares: running under atheris (libFuzzer, coverage
guided) when it is installed, else a plain-Python loop that replays the seeds
and random mutations of them.

A target module defines ``SEEDS`` (a list of byte strings) and
``test_one_input(data)``, which raises only for a bug, and calls
``main(test_one_input, SEEDS)`` under ``if __name__ == "__main__"``.

With atheris, the command line is libFuzzer's (``-max_total_time=60``,
``-runs=100000``, a corpus directory ...); without a corpus directory the seeds
are written to a fresh temporary one. Without atheris (or with
``WAMPCORE_FUZZ_PLAIN=1``), ``--runs N`` (default 10000) and ``--max-time S``
(or libFuzzer's ``-runs=N`` and ``-max_total_time=S``) bound the loop, and
``--seed N`` fixes the random mutations; the loop stops at the first failure
with its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

try:
    import atheris  # type: ignore[import-untyped,import-not-found,unused-ignore]
except ImportError:  # the plain-Python loop
    atheris = None

Target = Callable[[bytes], None]


@contextlib.contextmanager
def instrumented() -> Iterator[None]:
    """Import the code under test inside this block: atheris instruments it."""
    if atheris is None:
        yield
        return
    with atheris.instrument_imports(include=["wamp_core", "wamp_trio"]):
        yield


def mutate(rng: random.Random, data: bytes, seeds: list[bytes]) -> bytes:
    """A few random edits: bit flips, byte changes, insertions, deletions, splices."""
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        operation = rng.randrange(6)
        position = rng.randint(0, len(buffer))
        if operation == 0 and buffer:
            index = min(position, len(buffer) - 1)
            buffer[index] ^= 1 << rng.randrange(8)
        elif operation == 1 and buffer:
            buffer[min(position, len(buffer) - 1)] = rng.choice((0, 0x7F, 0xFF, rng.randrange(256)))
        elif operation == 2:
            buffer[position:position] = rng.randbytes(rng.randint(1, 8))
        elif operation == 3 and buffer:
            del buffer[position : position + rng.randint(1, 8)]
        elif operation == 4 and seeds:
            other = rng.choice(seeds)
            start = rng.randint(0, len(other))
            buffer[position:position] = other[start : start + rng.randint(1, 32)]
        else:
            buffer = buffer[:position]
    return bytes(buffer)


def plain_loop(target: Target, seeds: list[bytes], argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description="fuzz without atheris: seeds, then mutations")
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--max-time", type=float, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("corpus", nargs="*", help="files or directories of extra inputs")
    args, extra = parser.parse_known_args(argv)
    for option in extra:  # libFuzzer's bounds, as tox passes them
        name, _, value = option.partition("=")
        if name == "-max_total_time" and value:
            args.max_time = float(value)
        elif name == "-runs" and value:
            args.runs = int(value)
    inputs = list(seeds)
    for path in args.corpus:
        paths = (
            [os.path.join(path, n) for n in sorted(os.listdir(path))]
            if os.path.isdir(path)
            else [path]
        )
        for name in paths:
            with open(name, "rb") as handle:
                inputs.append(handle.read())
    rng = random.Random(args.seed)
    start = time.monotonic()
    runs = 0
    for data in inputs:
        target(data)
        runs += 1
    while runs < args.runs:
        if args.max_time is not None and time.monotonic() - start > args.max_time:
            break
        base = (
            rng.choice(inputs)
            if inputs and rng.random() < 0.9
            else rng.randbytes(rng.randint(0, 64))
        )
        target(mutate(rng, base, inputs))
        runs += 1
    elapsed = time.monotonic() - start
    print(f"plain loop: {runs} runs in {elapsed:.1f} s, no failure", file=sys.stderr)


def main(target: Target, seeds: list[bytes]) -> None:
    argv = sys.argv[1:]
    if atheris is None or os.environ.get("WAMPCORE_FUZZ_PLAIN"):
        plain_loop(target, seeds, argv)
        return
    if not any(not arg.startswith("-") for arg in argv):
        name = os.path.splitext(os.path.basename(sys.argv[0]))[0]
        corpus = tempfile.mkdtemp(prefix=f"wampcore-{name}-")
        for index, seed in enumerate(seeds):
            with open(os.path.join(corpus, f"seed-{index:03d}"), "wb") as handle:
                handle.write(seed)
        argv.append(corpus)
    atheris.Setup([sys.argv[0], *argv], target)
    atheris.Fuzz()


class Reader:
    """Takes choices from the fuzzer's input, front to back (0 once it is used up)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def byte(self) -> int:
        if self._pos >= len(self._data):
            return 0
        self._pos += 1
        return self._data[self._pos - 1]

    def choice(self, options: list[Any]) -> Any:
        return options[self.byte() % len(options)]

    def take(self, limit: int) -> bytes:
        """Up to ``limit`` bytes, the count read from the input."""
        count = self.byte() % (limit + 1)
        chunk = self._data[self._pos : self._pos + count]
        self._pos += len(chunk)
        return chunk

    def rest(self) -> bytes:
        chunk = self._data[self._pos :]
        self._pos = len(self._data)
        return chunk

    @property
    def done(self) -> bool:
        return self._pos >= len(self._data)
