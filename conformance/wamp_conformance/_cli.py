"""``wampcore conformance URL``: run the suite against a router and report."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

import trio

from ._peer import Failure
from ._report import summary, table, to_json, to_junit_xml
from ._suite import Outcome, Result, Target, run_suite, select, transport_kind

__all__ = ["add_arguments", "run_command"]

SERIALIZERS = ("json", "msgpack", "cbor")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's options."""
    parser.add_argument("url", help="the router: ws://, wss://, rs://, rss://, unix://, http://")
    parser.add_argument("--realm", default="realm1", help="an open realm (default realm1)")
    parser.add_argument("--serializer", choices=SERIALIZERS, default="json", help="default json")
    parser.add_argument(
        "--transport",
        action="append",
        default=[],
        metavar="URL",
        help="another URL of the same router, for the transport scenarios of its kind"
        " (repeatable: e.g. rs://127.0.0.1:8080 and http://127.0.0.1:8080/lp)",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="PATTERN",
        help="run only the scenarios matching PATTERN (a prefix like rpc, or a glob"
        " like 'rpc.*.error*'; repeatable)",
    )
    parser.add_argument(
        "--ticket",
        metavar="AUTHID:TICKET",
        help="a principal for the ticket authentication scenarios",
    )
    parser.add_argument(
        "--wampcra", metavar="AUTHID:SECRET", help="a principal for the WAMP-CRA scenarios"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="how long to wait for each expected message (default 5)",
    )
    parser.add_argument("--json", metavar="FILE", help="write a JSON report to FILE")
    parser.add_argument("--junit-xml", metavar="FILE", help="write a JUnit XML report to FILE")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--quiet", action="store_true", help="no progress while running")


def _credential(value: str | None, option: str) -> dict[str, str] | None:
    if value is None:
        return None
    authid, sep, secret = value.partition(":")
    if not sep or not authid or not secret:
        raise ValueError(f"{option} must be AUTHID:SECRET, not {value!r}")
    return {"authid": authid, "secret": secret}


def target_from(args: argparse.Namespace) -> Target:
    """The ``Target`` the options describe; ValueError for a bad option."""
    transport_kind(args.url)
    urls: dict[str, str] = {}
    for url in args.transport:
        urls[transport_kind(url)] = url
    if args.timeout <= 0:
        raise ValueError("--timeout must be positive")
    credentials = {}
    for method, value, option in (
        ("ticket", args.ticket, "--ticket"),
        ("wampcra", args.wampcra, "--wampcra"),
    ):
        credential = _credential(value, option)
        if credential is not None:
            credentials[method] = credential
    return Target(
        args.url,
        realm=args.realm,
        serializer=args.serializer,
        timeout=args.timeout,
        urls=urls,
        credentials=credentials,
    )


def run_command(
    args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Run the suite as the options say; the exit status (0: nothing failed,
    1: something failed, 2: bad options or the router could not be joined)."""
    prog = "wampcore conformance"
    try:
        target = target_from(args)
    except ValueError as exc:
        print(f"{prog}: error: {exc}", file=err)
        return 2
    chosen = select(args.only)
    if args.list:
        for item in chosen:
            print(f"{item.id:48} {item.spec}", file=out)
        return 0
    if not chosen:
        print(f"{prog}: error: no scenario matches {' '.join(args.only)}", file=err)
        return 2

    def progress(index: int, total: int, result: Result) -> None:
        if not args.quiet:
            print(
                f"[{index}/{total}] {result.outcome.value:4} {result.scenario.id}",
                file=err,
                flush=True,
            )

    try:
        results = trio.run(lambda: run_suite(target, chosen, progress=progress))
    except Failure as exc:
        print(f"{prog}: error: {exc}", file=err)
        return 2
    print(table(results), file=out)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            file.write(to_json(target, results) + "\n")
    if args.junit_xml:
        with open(args.junit_xml, "w", encoding="utf-8") as file:
            file.write(to_junit_xml(target, results) + "\n")
    failed = any(result.outcome is Outcome.FAIL for result in results)
    if not args.quiet:
        print(f"{prog}: {summary(results)}", file=err)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m wamp_conformance URL ...``."""
    parser = argparse.ArgumentParser(
        prog="wampcore conformance", description="Check a WAMP router against the spec."
    )
    add_arguments(parser)
    return run_command(parser.parse_args(argv))
