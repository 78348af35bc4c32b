"""Tests for wamp_core._uri: URI validation, wildcard matching, PatternMap and the URI constants.

Examples come from BP/building_blocks.md ("URIs"), AP/ap_rpc_pattern_based_registration.md
and AP/ap_pubsub_pattern_based_subscription.md.
"""

from __future__ import annotations

from typing import Any

import pytest

from wamp_core import (
    MATCH_POLICIES,
    CloseReason,
    ErrorURI,
    PatternMap,
    is_reserved_uri,
    is_valid_uri,
    wildcard_matches,
)

# -- is_valid_uri -------------------------------------------------------------------

# (uri, valid for exact, valid for prefix, valid for wildcard) under the strict rule
STRICT_CASES = [
    ("com.myapp.mytopic1", True, True, True),
    ("com.myapp.myprocedure1", True, True, True),
    ("a", True, True, True),
    ("wamp.error.not_authorized", True, True, True),
    ("com.myapp_2.x_y", True, True, True),
    ("0.1.2", True, True, True),
    ("com.myapp.", False, True, True),  # trailing empty component: prefix and wildcard only
    ("com..myprocedure1", False, False, True),  # inner empty component: wildcard only
    (".com.myapp", False, False, True),  # leading empty component
    ("com.myapp..", False, False, True),
    (".", False, False, True),
    ("..", False, False, True),
    ("com.myApp.topic", False, False, False),  # upper case is not strict
    ("com.my-app.topic", False, False, False),
    ("com.myapp.ü", False, False, False),
    ("com.my app", False, False, False),
    ("com.myapp#1", False, False, False),
    ("", False, False, False),
]

# Under the loose rule (the spec's MUST): anything but ".", "#" and whitespace.
LOOSE_CASES = [
    ("com.myapp.mytopic1", True, True, True),
    ("com.myApp.Topic-1", True, True, True),
    ("com.myapp.ü.😀", True, True, True),
    ("com.myapp.my$topic!", True, True, True),
    ("a", True, True, True),
    ("com.myapp.", False, True, True),
    ("com.", False, True, True),
    ("com..myprocedure1", False, False, True),
    ("a..c", False, False, True),
    ("..c", False, False, True),
    ("a..", False, False, True),
    (".", False, False, True),
    ("...", False, False, True),
    ("com.my app", False, False, False),
    ("com.my\tapp", False, False, False),
    ("com.my\napp", False, False, False),
    ("com.myapp\n", False, False, False),  # a trailing newline must not slip past "$"
    ("com.myapp.\n", False, False, False),
    ("com.my\u00a0app", False, False, False),  # non-breaking space is whitespace
    ("com.my\u2003app", False, False, False),  # em space
    (" com.myapp", False, False, False),
    ("com.myapp ", False, False, False),
    ("com.myapp#1", False, False, False),
    ("#", False, False, False),
    ("com.#.x", False, False, False),
    ("", False, False, False),
]


def _validity_cases(table: list[tuple[str, bool, bool, bool]], strict: bool) -> list[Any]:
    cases = []
    for uri, exact, prefix, wildcard in table:
        for match, valid in (("exact", exact), ("prefix", prefix), ("wildcard", wildcard)):
            label = f"{'strict' if strict else 'loose'}-{match}-{uri!r}"
            cases.append(pytest.param(uri, match, strict, valid, id=label))
    return cases


@pytest.mark.parametrize(
    ("uri", "match", "strict", "valid"),
    _validity_cases(STRICT_CASES, True) + _validity_cases(LOOSE_CASES, False),
)
def test_is_valid_uri(uri: str, match: str, strict: bool, valid: bool) -> None:
    assert is_valid_uri(uri, match, strict=strict) is valid


def test_strict_implies_loose() -> None:
    for uri, *_ in STRICT_CASES:
        for match in MATCH_POLICIES:
            if is_valid_uri(uri, match, strict=True):
                assert is_valid_uri(uri, match)


def test_default_policy_is_exact_and_loose() -> None:
    assert is_valid_uri("com.MyApp")
    assert not is_valid_uri("com..x")
    assert not is_valid_uri("com.")


@pytest.mark.parametrize("uri", [None, 1, b"com.myapp", ["com"], 1.5, True])
def test_non_string_is_never_valid(uri: object) -> None:
    for match in MATCH_POLICIES:
        for strict in (False, True):
            assert is_valid_uri(uri, match, strict=strict) is False


@pytest.mark.parametrize("match", ["", "Exact", "glob", "regex", "prefix "])
def test_unknown_policy_is_never_valid(match: str) -> None:
    assert is_valid_uri("com.myapp", match) is False
    assert is_valid_uri("com.myapp", match, strict=True) is False


def test_match_policies() -> None:
    assert MATCH_POLICIES == ("exact", "prefix", "wildcard")


# -- is_reserved_uri / wildcard_matches ------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "reserved"),
    [
        ("wamp", True),
        ("wamp.error.not_authorized", True),
        ("wamp.session.on_join", True),
        ("wamp.", True),
        ("wampx.y", False),
        ("com.wamp.x", False),
        ("WAMP.error", False),
        ("", False),
        ("com.myapp", False),
    ],
)
def test_is_reserved_uri(uri: str, reserved: bool) -> None:
    assert is_reserved_uri(uri) is reserved


@pytest.mark.parametrize(
    ("pattern", "uri", "matches"),
    [
        ("com.myapp..myprocedure1", "com.myapp.myobject1.myprocedure1", True),
        ("com.myapp..myprocedure1", "com.myapp.myobject2.myprocedure1", True),
        ("com.myapp..myprocedure1", "com.myapp.myobject1.myprocedure1.mysubprocedure1", False),
        ("com.myapp..myprocedure1", "com.myapp.myobject1.myprocedure2", False),
        ("com.myapp..myprocedure1", "com.myapp2.myobject1.myprocedure1", False),
        ("a..c", "a.b", False),
        ("..", "x.y.z", True),
        ("..", "x.y", False),
        ("", "anything", True),
        ("", "a.b", False),
        ("a.b", "a.b", True),
        ("a.b", "a.c", False),
    ],
)
def test_wildcard_matches(pattern: str, uri: str, matches: bool) -> None:
    assert wildcard_matches(pattern, uri) is matches


# -- PatternMap ---------------------------------------------------------------------------


def test_pattern_map_get_set_len_iter() -> None:
    table: PatternMap[str] = PatternMap()
    assert len(table) == 0
    assert list(table) == []
    table.set("com.a", "exact", "e1")
    table.set("com.a", "prefix", "p1")
    table.set("com..x", "wildcard", "w1")
    table.set("com.a.", "wildcard", "w2")
    table.set("x", "wildcard", "w3")
    assert len(table) == 5
    assert sorted(table) == sorted(
        [
            ("com.a", "exact", "e1"),
            ("com.a", "prefix", "p1"),
            ("com..x", "wildcard", "w1"),
            ("com.a.", "wildcard", "w2"),
            ("x", "wildcard", "w3"),
        ]
    )
    # the same URI under different policies are different entries
    assert table.get("com.a") == "e1"
    assert table.get("com.a", "exact") == "e1"
    assert table.get("com.a", "prefix") == "p1"
    assert table.get("com.a", "wildcard") is None
    assert table.get("com..x", "wildcard") == "w1"
    assert table.get("com..x") is None
    assert table.get("com..y", "wildcard") is None  # bucket exists, key does not
    assert table.get("a.b.c.d", "wildcard") is None  # no bucket
    assert table.get("com.b", "prefix") is None
    # set replaces
    table.set("com.a", "exact", "e2")
    table.set("com.a", "prefix", "p2")
    table.set("com..x", "wildcard", "w4")
    assert len(table) == 5
    assert (table.get("com.a"), table.get("com.a", "prefix")) == ("e2", "p2")
    assert table.get("com..x", "wildcard") == "w4"


def test_pattern_map_remove() -> None:
    table: PatternMap[int] = PatternMap()
    table.set("a.b", "exact", 1)
    table.set("a.", "prefix", 2)
    table.set("a..c", "wildcard", 3)
    table.set("a..d", "wildcard", 4)
    # removing what is not there is a no-op, whatever the policy
    table.remove("a.b", "prefix")
    table.remove("zzz")
    table.remove("zzz", "prefix")
    table.remove("a..e", "wildcard")  # bucket exists, entry does not
    table.remove("a...e", "wildcard")  # no such bucket
    table.remove("a.b", "wildcard")  # same component count, not a wildcard entry
    assert len(table) == 4
    assert table.best("a.b") == 1
    table.remove("a.b")
    assert table.get("a.b") is None
    assert table.best("a.b") == 2  # now the prefix wins
    table.remove("a.", "prefix")
    assert table.best("a.b") is None
    assert table.best("a.x.c") == 3
    table.remove("a..c", "wildcard")
    assert table.best("a.x.c") is None
    assert table.best("a.x.d") == 4
    assert table._wildcard  # the 3-component bucket still holds "a..d"
    table.remove("a..d", "wildcard")
    assert table._wildcard == {}  # the emptied bucket is dropped
    assert len(table) == 0
    assert list(table) == []
    assert table.best("a.x.d") is None
    assert table.matching("a.x.d") == []
    table.remove("a..d", "wildcard")  # again: still a no-op
    assert len(table) == 0


# AP/ap_rpc_pattern_based_registration.md, "Calls matching multiple registrations"
SPEC_REGISTRATIONS = [
    ("a1.b2.c3.d4.e55", "exact", 1),
    ("a1.b2.c3", "prefix", 2),
    ("a1.b2.c3.d4", "prefix", 3),
    ("a1.b2..d4.e5", "wildcard", 4),
    ("a1.b2.c3..e5", "wildcard", 5),
    ("a1.b2..d4.e5..g7", "wildcard", 6),
    ("a1.b2..d4..f6.g7", "wildcard", 7),
]


def spec_table(registrations: list[tuple[str, str, int]] = SPEC_REGISTRATIONS) -> PatternMap[int]:
    table: PatternMap[int] = PatternMap()
    for uri, match, value in registrations:
        table.set(uri, match, value)  # type: ignore[arg-type]
    return table


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("a1.b2.c3.d4.e55", 1),  # exact match
        ("a1.b2.c3.d98.e74", 2),  # single prefix match
        ("a1.b2.c3.d4.e325", 3),  # 2 prefix matches (2, 3): the longest
        ("a1.b2.c55.d4.e5", 4),  # single wildcard match
        # The spec's table says RPC 5 here ("no prefix match, 2 wildcard matches
        # (4,5)"), but prefixes 2 and 3 DO match "a1.b2.c3.d4.e5" -- as they match
        # "a1.b2.c3.d4.e325" in the row above -- and the spec's own step 2 puts
        # prefixes before wildcards. We follow the algorithm: RPC 3. The wildcard
        # choice the example means is checked in test_spec_wildcard_ranking.
        ("a1.b2.c3.d4.e5", 3),
        ("a1.b2.c88.d4.e5.f6.g7", 6),  # wildcards 6, 7: equal first run, 6 longer second
        ("a2.b2.c2.d2.e2", None),  # no match: wamp.error.no_such_procedure
    ],
)
def test_spec_best_match_table(uri: str, expected: int | None) -> None:
    assert spec_table().best(uri) == expected


def test_spec_wildcard_ranking() -> None:
    """The spec's "2 wildcard matches (4,5), select longest one. Use RPC 5"."""
    wildcards_only = spec_table([r for r in SPEC_REGISTRATIONS if r[1] == "wildcard"])
    assert wildcards_only.best("a1.b2.c3.d4.e5") == 5
    assert wildcards_only.best("a1.b2.c55.d4.e5") == 4
    assert wildcards_only.best("a1.b2.c88.d4.e5.f6.g7") == 6
    assert wildcards_only.best("a1.b2.c88.d4.e0.f6.g7") == 7
    # insertion order does not matter
    reversed_table = spec_table(list(reversed(SPEC_REGISTRATIONS[3:])))
    assert reversed_table.best("a1.b2.c3.d4.e5") == 5
    assert reversed_table.best("a1.b2.c88.d4.e5.f6.g7") == 6


def test_spec_wildcard_example_from_the_step_list() -> None:
    """For "a1.b2.c3.d4", "a1.b2..d4" beats "a1...d4"."""
    for order in ((1, 2), (2, 1)):
        table: PatternMap[str] = PatternMap()
        patterns = {1: "a1.b2..d4", 2: "a1...d4"}
        for key in order:
            table.set(patterns[key], "wildcard", patterns[key])
        assert table.best("a1.b2.c3.d4") == "a1.b2..d4"
        assert table.best("a1.x.c3.d4") == "a1...d4"


def test_spec_matching_lists_every_match() -> None:
    table = spec_table()
    assert table.matching("a1.b2.c3.d4.e55") == [1, 2, 3]
    assert sorted(table.matching("a1.b2.c3.d4.e5")) == [2, 3, 4, 5]
    assert table.matching("a1.b2.c88.d4.e5.f6.g7") == [6, 7]
    assert table.matching("a2.b2.c2.d2.e2") == []


@pytest.mark.parametrize(
    ("uri", "matches"),
    [
        ("com.myapp.myobject1.myprocedure1", True),
        ("com.myapp.myobject1-mysubobject1", True),  # a string prefix, not a component one
        ("com.myapp.myobject1.mysubobject1.myprocedure1", True),
        ("com.myapp.myobject1", True),
        ("com.myapp.myobject2", False),
        ("com.myapp.myobject", False),
    ],
)
def test_prefix_is_a_string_prefix(uri: str, matches: bool) -> None:
    table: PatternMap[str] = PatternMap()
    table.set("com.myapp.myobject1", "prefix", "r")
    assert table.best(uri) == ("r" if matches else None)
    assert table.matching(uri) == (["r"] if matches else [])


def test_longest_prefix_wins_in_any_order() -> None:
    for prefixes in (["a.b", "a.b.c", "a"], ["a.b.c", "a.b", "a"], ["a", "a.b.c", "a.b"]):
        table: PatternMap[str] = PatternMap()
        for prefix in prefixes:
            table.set(prefix, "prefix", prefix)
        assert table.best("a.b.c.d") == "a.b.c"
        assert table.best("a.b.x") == "a.b"
        assert table.best("a.x") == "a"
        assert table.best("b") is None
        assert sorted(table.matching("a.b.c.d")) == ["a", "a.b", "a.b.c"]


def test_exact_beats_prefix_beats_wildcard() -> None:
    table: PatternMap[str] = PatternMap()
    table.set("a..c", "wildcard", "wildcard")
    assert table.best("a.b.c") == "wildcard"
    table.set("a.b", "prefix", "prefix")
    assert table.best("a.b.c") == "prefix"
    table.set("a.b.c", "exact", "exact")
    assert table.best("a.b.c") == "exact"
    assert table.matching("a.b.c") == ["exact", "prefix", "wildcard"]


def test_best_without_a_match_in_a_wildcard_bucket() -> None:
    table: PatternMap[str] = PatternMap()
    table.set("a..c", "wildcard", "w")
    assert table.best("x.y.z") is None  # bucket of 3 components, no match
    assert table.best("a.b") is None  # no bucket of 2 components
    assert table.matching("x.y.z") == []
    assert table.matching("a.b") == []


def test_wildcard_matches_whole_components_only() -> None:
    table: PatternMap[str] = PatternMap()
    table.set("com.myapp..myprocedure1", "wildcard", "w")
    assert table.best("com.myapp.myobject1.myprocedure1") == "w"
    assert table.best("com.myapp.myobject1.myprocedure1.mysubprocedure1") is None
    assert table.best("com.myapp.myobject1.myprocedure2") is None
    assert table.best("com.myapp2.myobject1.myprocedure1") is None
    assert table.matching("com.myapp.x.myprocedure1") == ["w"]


def test_matching_with_only_wildcards_of_other_lengths() -> None:
    table: PatternMap[int] = PatternMap()
    table.set("a.b", "exact", 1)
    table.set(".b", "wildcard", 2)
    assert table.matching("a.b") == [1, 2]
    assert table.matching("a.b.c") == []
    assert table.matching("x.b") == [2]


# -- ErrorURI / CloseReason -------------------------------------------------------------------


def _constants(cls: type) -> dict[str, str]:
    return {name: value for name, value in vars(cls).items() if name.isupper()}


def test_error_uris_are_valid_strict_uris() -> None:
    errors = _constants(ErrorURI)
    assert len(errors) >= 28
    for name, value in errors.items():
        assert value.startswith("wamp.error."), name
        assert is_valid_uri(value, strict=True), name
        assert is_reserved_uri(value)
    assert len(set(errors.values())) == len(errors)


def test_error_uri_spot_checks() -> None:
    assert ErrorURI.NO_SUCH_PROCEDURE == "wamp.error.no_such_procedure"
    assert ErrorURI.PROCEDURE_ALREADY_EXISTS == "wamp.error.procedure_already_exists"
    assert ErrorURI.INVALID_URI == "wamp.error.invalid_uri"
    assert ErrorURI.NOT_AUTHORIZED == "wamp.error.not_authorized"
    assert ErrorURI.NO_SUCH_REALM == "wamp.error.no_such_realm"
    assert ErrorURI.PROTOCOL_VIOLATION == "wamp.error.protocol_violation"
    assert ErrorURI.CANCELED == "wamp.error.canceled"
    assert ErrorURI.NO_SUCH_SUBSCRIPTION == "wamp.error.no_such_subscription"
    assert ErrorURI.NO_SUCH_REGISTRATION == "wamp.error.no_such_registration"
    assert ErrorURI.INVALID_ARGUMENT == "wamp.error.invalid_argument"
    assert ErrorURI.OPTION_DISALLOWED_DISCLOSE_ME == "wamp.error.option_disallowed.disclose_me"
    assert ErrorURI.NO_AVAILABLE_CALLEE == "wamp.error.no_available_callee"


def test_close_reasons() -> None:
    reasons = _constants(CloseReason)
    for name, value in reasons.items():
        assert value.startswith("wamp.close."), name
        assert is_valid_uri(value, strict=True), name
    assert CloseReason.SYSTEM_SHUTDOWN == "wamp.close.system_shutdown"
    assert CloseReason.CLOSE_REALM == "wamp.close.close_realm"
    assert CloseReason.GOODBYE_AND_OUT == "wamp.close.goodbye_and_out"
    assert CloseReason.NORMAL == "wamp.close.normal"
    assert CloseReason.KILLED == "wamp.close.killed"
