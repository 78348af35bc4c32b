"""wamp_conformance: checks any WAMP router over the wire against the spec.

``wampcore conformance URL`` runs the scenario catalogue (``scenarios/``)
against a router and reports pass / fail / skipped for each, with the spec
reference it checks. See docs/conformance.md.
"""

from ._cli import main
from ._peer import CLOSED, Failure, Peer, Skip
from ._report import summary, table, to_json, to_junit_xml
from ._suite import (
    SCENARIOS,
    Context,
    Outcome,
    Result,
    Scenario,
    Target,
    run_suite,
    scenario,
    select,
    transport_kind,
)

__all__ = [
    "CLOSED",
    "SCENARIOS",
    "Context",
    "Failure",
    "Outcome",
    "Peer",
    "Result",
    "Scenario",
    "Skip",
    "Target",
    "main",
    "run_suite",
    "scenario",
    "select",
    "summary",
    "table",
    "to_json",
    "to_junit_xml",
    "transport_kind",
]
