"""Autobahn|Python's client (asyncio, from PyPI) against our router: the
Advanced Profile features Autobahn's client supports.

The router runs in this process on loopback port 0; several Autobahn sessions,
each on its own connection, run in one subprocess
(``autobahn_advanced_probe.py``) and report what they saw as JSON.

Where Autobahn departs from the spec, the report records what it does and the
tests do not assert it: ``autobahn_api`` (no way to ask for ``disclose_me`` or
``disclose_caller``; a float ``CallOptions.timeout``, as its docstring invites,
fails locally after drawing a request ID, so the session's next request skips
one and our router ABORTs it as a protocol violation) and
``cancel_kill.autobahn_answer`` (an interrupted handler is answered with
``wamp.error.runtime_error``).
"""

from __future__ import annotations

import json
import pathlib
import sys
from typing import Any

import pytest
import trio

import wamp_core
from wamp_trio import Endpoint, RouterHost, serve_router
from wamp_trio._config import TcpListener

PROBE = pathlib.Path(__file__).with_name("autobahn_advanced_probe.py")

pytest.importorskip("autobahn", reason="the interop tests need autobahn (in the test extras)")


async def run_probe(url: str, serializer: str) -> dict[str, Any]:
    with trio.fail_after(60):
        result = await trio.run_process(
            [sys.executable, str(PROBE), url, serializer],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    lines = result.stdout.decode().strip().splitlines()
    assert lines, result.stderr.decode(errors="replace")[-3000:]
    report: dict[str, Any] = json.loads(lines[-1])
    assert report["failed"] == [], {name: report[name] for name in report["failed"]}
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-3000:]
    return report


async def serve_and_probe(kind: str, serializer: str) -> dict[str, Any]:
    host = RouterHost(wamp_core.Router(["realm1"]))
    async with trio.open_nursery() as nursery:
        endpoints: list[Endpoint] = await nursery.start(serve_router, host, [TcpListener(port=0)])
        prefix = {"websocket": "ws://", "rawsocket": "rs://"}[kind]
        url = next(e.url for e in endpoints if e.url.startswith(prefix))
        found = await run_probe(url, serializer)
        with trio.fail_after(5):  # the aborted connection may take a moment
            while host.router.sessions:
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    return found


@pytest.fixture(
    scope="module",
    params=[("websocket", "json"), ("websocket", "msgpack"), ("rawsocket", "cbor")],
    ids="-".join,
)
def report(request: pytest.FixtureRequest) -> dict[str, Any]:
    """One probe run per transport and serializer, shared by the tests below (a
    synchronous fixture running its own trio loop, so that it can be module-scoped)."""
    kind, serializer = request.param
    found: dict[str, Any] = trio.run(serve_and_probe, kind, serializer)
    return found


def test_progressive_call_results(report: dict[str, Any]) -> None:
    progress = report["progress"]
    assert progress["chunks"] == [[[3], {"left": 2}], [[2], {"left": 1}], [[1], {"left": 0}]]
    assert progress["final"] == "liftoff"
    # Without on_progress the callee is not offered progress (no receive_progress).
    assert progress["plain"] == "liftoff"
    assert progress["callee_saw_progress"] == [True, False]


def test_cancel_from_the_call_future(report: dict[str, Any]) -> None:
    cancel = report["cancel"]
    assert cancel["caller_saw"] == "CancelledError"
    # Autobahn sends CANCEL without a mode; our default is killnowait.
    assert cancel["interrupts"] == [{"mode": "killnowait", "reason": None}]
    assert cancel["callee_cancelled"] is True
    assert cancel["router_error"] == ["wamp.error.canceled"]
    assert cancel["call_after"] == "liftoff"


def test_cancel_modes(report: dict[str, Any]) -> None:
    kill = report["cancel_kill"]
    assert kill["interrupts"] == [{"mode": "kill", "reason": None}] * 2
    assert kill["callee_cancelled"] == [True, True]
    # kill: the caller waits for the callee's answer to INTERRUPT and gets it.
    assert kill["caller_error"] == "wamp.error.canceled"
    # Left to itself, Autobahn answers an interrupted invocation with ERROR
    # wamp.error.runtime_error (its URI for an unmapped exception), not the
    # spec's wamp.error.canceled: an Autobahn divergence, recorded, not asserted.
    assert isinstance(kill["autobahn_answer"], str)
    skip = report["cancel_skip"]
    assert skip["caller_error"] == "wamp.error.canceled"
    assert skip["interrupts"] == []
    assert skip["callee_cancelled"] is False
    assert skip["call_after"] == "liftoff"


def test_call_timeout(report: dict[str, Any]) -> None:
    timeout = report["timeout"]
    assert timeout["caller_error"] == "wamp.error.timeout"
    # CallOptions.timeout goes on the wire as it is: 200 means 200 ms.
    assert 0.15 <= timeout["elapsed"] < 5
    assert timeout["interrupts"] == [{"mode": "killnowait", "reason": "wamp.error.timeout"}]
    assert timeout["callee_cancelled"] is True


def test_pattern_registrations(report: dict[str, Any]) -> None:
    found = report["pattern_registrations"]
    assert found["prefix"] == ["B prefix", "com.example.pfx.one.two", [1]]
    assert found["wildcard"] == ["B wildcard", "com.example.any.wild", [2]]
    # Exact beats prefix, the longest prefix beats a shorter one (no
    # INVOCATION.Details.procedure for an exact registration: Autobahn fills in
    # the registered URI).
    assert found["exact_wins"] == ["C exact", "com.example.pfx.exact", []]
    assert found["longest_prefix_wins"] == ["C prefix", "com.example.pfx.deep.x", []]
    assert found["no_match"] == "wamp.error.no_such_procedure"


def test_shared_registrations(report: dict[str, Any]) -> None:
    found = report["shared_registrations"]
    assert found["same_registration"] is True
    assert found["calls"] == {
        "roundrobin": ["B", "C", "B", "C"],
        "first": ["B", "B", "B", "B"],
        "last": ["C", "C", "C", "C"],
    }
    assert found["policy_mismatch"] == "wamp.error.procedure_already_exists"


def test_pattern_subscriptions(report: dict[str, Any]) -> None:
    events = report["pattern_subscriptions"]["events"]
    # An event matching two subscriptions of one session comes once per subscription.
    assert sorted(events, key=lambda e: (e["args"], e["kind"])) == [
        {"kind": "exact", "args": [1], "topic": "com.example.pfxtopic.a",
         "subscription": "exact", "publisher": None},
        {"kind": "prefix", "args": [1], "topic": "com.example.pfxtopic.a",
         "subscription": "prefix", "publisher": None},
        {"kind": "prefix", "args": [2], "topic": "com.example.pfxtopic.b.c",
         "subscription": "prefix", "publisher": None},
        {"kind": "wildcard", "args": [3], "topic": "com.example.x.status",
         "subscription": "wildcard", "publisher": None},
    ]  # fmt: skip


def test_subscriber_black_and_whitelisting(report: dict[str, Any]) -> None:
    found = report["blackwhite_listing"]
    assert found["same_subscription"] is True
    assert found["receivers"] == {
        "default": ["B", "C"],
        "exclude_me_false": ["A", "B", "C"],
        "exclude": ["C"],
        "exclude_with_me": ["A", "C"],
        "eligible": ["B"],
        "eligible_and_exclude": ["B"],
        "exclude_authid": ["B"],
        "eligible_authid": ["A", "C"],
        "exclude_authrole": [],
        "eligible_authrole": ["A", "B", "C"],
        "eligible_authrole_other": [],
    }


def test_session_meta_api(report: dict[str, Any]) -> None:
    meta = report["meta"]
    (a_id, a_authid), (b_id, b_authid), _ = report["sessions"].values()
    assert meta["session_count"] == 3
    assert meta["session_count_filtered"] == 0
    assert meta["session_list"] == meta["session_ids"]
    got = meta["session_get"]
    assert {k: got[k] for k in ("session", "authid", "authrole", "authmethod")} == {
        "session": b_id, "authid": b_authid, "authrole": "anonymous", "authmethod": "anonymous",
    }  # fmt: skip
    assert got["transport"]["type"] in ("websocket", "rawsocket")
    assert meta["session_get_missing"] == "wamp.error.no_such_session"
    d_id, d_authid = meta["d"]
    assert meta["on_join"]["session"] == d_id
    assert meta["on_join"]["authid"] == d_authid
    assert meta["on_join"]["authrole"] == "anonymous"
    assert meta["on_leave"] == [d_id, d_authid, "anonymous"]
    assert meta["d_leave_reason"] == "wamp.close.goodbye_and_out"
    assert meta["session_count_after"] == 3
    assert a_id != b_id
    assert a_authid != b_authid


def test_registration_and_subscription_meta_api(report: dict[str, Any]) -> None:
    meta = report["meta"]
    ids = meta["registration_ids"]
    listed = meta["registration_list"]
    assert ids["prefix"] in listed["prefix"]
    assert ids["wildcard"] in listed["wildcard"]
    assert ids["shared"] in listed["exact"]
    assert meta["registration_lookup"] == {
        "prefix": ids["prefix"], "exact_of_prefix": None, "shared": ids["shared"],
    }  # fmt: skip
    assert meta["registration_match"] == {
        "prefix": ids["prefix"], "wildcard": ids["wildcard"], "none": None,
    }  # fmt: skip
    got = meta["registration_get"]
    assert {k: got[k] for k in ("id", "uri", "match", "invoke")} == {
        "id": ids["shared"], "uri": "com.example.shared.roundrobin",
        "match": "exact", "invoke": "roundrobin",
    }  # fmt: skip
    b_id, c_id = report["sessions"]["B"][0], report["sessions"]["C"][0]
    assert meta["registration_callees"] == sorted([b_id, c_id])
    subs = meta["subscription_ids"]
    assert meta["subscription_lookup"] == {
        "exact": subs["bw"],
        "prefix": subs["prefix"],
        "none": None,
    }
    assert meta["subscription_match"] == sorted([subs["prefix"], subs["exact"]])
    assert meta["subscription_subscribers"] == meta["session_ids"]


def test_testament_on_abrupt_disconnect(report: dict[str, Any]) -> None:
    found = report["testament"]
    c_id, c_authid = found["c"]
    # Detached before destroyed; the flushed ones never; disclose_me discloses C.
    assert found["events"] == [
        {"topic": "com.example.testament.detached", "args": ["C detached"], "kwargs": {},
         "publisher": [None, None, None]},
        {"topic": "com.example.testament.destroyed", "args": ["C is gone"],
         "kwargs": {"who": c_id}, "publisher": [c_id, c_authid, "anonymous"]},
    ]  # fmt: skip
    assert found["c_leave_reason"] == "wamp.close.transport_lost"
    assert found["on_leave"] == [c_id, c_authid, "anonymous"]
    # C's part of the shared registration went with it.
    assert found["shared_callees_after"] == [found["b"]]
    assert found["shared_calls_after"] == ["B", "B"]


def test_clean_leave(report: dict[str, Any]) -> None:
    assert report["leave"] == ["wamp.close.goodbye_and_out"] * 2
