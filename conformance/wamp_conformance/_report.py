"""Reports of a conformance run: a text table, JSON and JUnit XML."""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from collections.abc import Sequence
from typing import Any
from xml.etree import ElementTree

from ._suite import Outcome, Result, Target

__all__ = ["summary", "table", "to_json", "to_junit_xml"]


def summary(results: Sequence[Result]) -> str:
    """``"81 passed, 2 failed, 5 skipped"``."""
    counts = Counter(result.outcome for result in results)
    return ", ".join(
        f"{counts[outcome]} {word}"
        for outcome, word in (
            (Outcome.PASS, "passed"),
            (Outcome.FAIL, "failed"),
            (Outcome.SKIP, "skipped"),
        )
    )


def table(results: Sequence[Result], width: int = 100) -> str:
    """One line per scenario (verdict, ID, spec reference), with the reason
    indented below failures and skips, and the summary last."""
    lines = []
    for result in results:
        item = result.scenario
        lines.append(f"{result.outcome.value.upper():4}  {item.id:48} {item.spec}")
        if result.reason:
            for line in textwrap.wrap(result.reason, width - 6) or [""]:
                lines.append(f"      {line}")
    lines.append(summary(results))
    return "\n".join(lines)


def to_json(target: Target, results: Sequence[Result]) -> str:
    """The run as JSON: the target and every scenario's verdict."""
    document: dict[str, Any] = {
        "router": target.url,
        "realm": target.realm,
        "serializer": target.serializer,
        "summary": {
            outcome.value: sum(1 for r in results if r.outcome is outcome) for outcome in Outcome
        },
        "scenarios": [
            {
                "id": result.scenario.id,
                "title": result.scenario.title,
                "spec": result.scenario.spec,
                "outcome": result.outcome.value,
                "reason": result.reason,
                "seconds": round(result.seconds, 3),
            }
            for result in results
        ],
    }
    return json.dumps(document, indent=2)


def to_junit_xml(target: Target, results: Sequence[Result]) -> str:
    """The run as JUnit XML (one testsuite; a testcase per scenario, its
    classname the scenario's group)."""
    suite = ElementTree.Element(
        "testsuite",
        name=f"wamp-conformance {target.url}",
        tests=str(len(results)),
        failures=str(sum(1 for r in results if r.outcome is Outcome.FAIL)),
        skipped=str(sum(1 for r in results if r.outcome is Outcome.SKIP)),
        errors="0",
        time=f"{sum(r.seconds for r in results):.3f}",
    )
    for result in results:
        item = result.scenario
        group, _, name = item.id.rpartition(".")
        case = ElementTree.SubElement(
            suite, "testcase", classname=group or item.id, name=name, time=f"{result.seconds:.3f}"
        )
        if result.outcome is Outcome.FAIL:
            failure = ElementTree.SubElement(case, "failure", message=result.reason)
            failure.text = f"{item.title}\nspec: {item.spec}\n{result.reason}"
        elif result.outcome is Outcome.SKIP:
            ElementTree.SubElement(case, "skipped", message=result.reason)
        properties = ElementTree.SubElement(case, "properties")
        ElementTree.SubElement(properties, "property", name="spec", value=item.spec)
    return ElementTree.tostring(suite, encoding="unicode", xml_declaration=True)
