"""Our trio client authenticating against a Crossbar.io router (issue 5).

Opt-in like ``test_crossbar.py`` (marker ``crossbar``; ``tox -e interop-crossbar``).
Crossbar gets static principals in its transport's ``auth`` configuration, the
same users as ``examples/router-auth.toml``: alice (ticket), bob (WAMP-CRA),
carol (salted WAMP-CRA), dave (cryptosign, a key generated here) and erin
(WAMP-SCRAM, Crossbar's spelling ``scram``, an argon2id-13 credential derived
here), all in role ``user``. Results are in docs/interop.md, "Authentication
against Crossbar.io".

!!! EXAMPLE CREDENTIALS, FOR TESTS ONLY !!!
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trio

import wamp_core
from tests.interop.test_crossbar import running_crossbar
from wamp_trio import (
    ApplicationError,
    ClientAuth,
    JoinError,
    connect,
    cryptosign_auth,
    scram_auth,
    ticket_auth,
    wampcra_auth,
)

pytestmark = pytest.mark.crossbar

CAROL_SALT = {"salt": "carol-salt", "iterations": 1000, "keylen": 32}
DAVE = wamp_core.CryptosignKey.generate()
ERIN = wamp_core.derive_scram_credential("erin-password", kdf="argon2id-13")

USER = {
    "name": "user",
    "permissions": [
        {
            "uri": "com.example.",
            "match": "prefix",
            "allow": {"call": True, "register": True, "publish": True, "subscribe": True},
            "disclose": {"caller": True, "publisher": True},
            "cache": True,
        }
    ],
}

AUTH: dict[str, Any] = {
    "ticket": {
        "type": "static",
        "principals": {"alice": {"ticket": "alice-ticket", "role": "user"}},
    },
    "wampcra": {
        "type": "static",
        # Crossbar's static WAMP-CRA calls its principals "users"; for a salted
        # secret it keeps the password and derives the key itself.
        "users": {
            "bob": {"secret": "bob-secret", "role": "user"},
            "carol": {"secret": "carol-secret", "role": "user", **CAROL_SALT},
        },
    },
    "cryptosign": {
        "type": "static",
        "principals": {"dave": {"authorized_keys": [DAVE.public_key_hex], "role": "user"}},
    },
    "scram": {
        "type": "static",
        "principals": {"erin": {**ERIN.to_dict(), "role": "user"}},
    },
}


@pytest.fixture(scope="module")
def crossbar_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with running_crossbar(tmp_path_factory.mktemp("crossbar-auth"), USER, AUTH) as urls:
        yield urls


GOOD: dict[str, tuple[str, str, Callable[[], ClientAuth]]] = {
    "ticket": ("alice", "ticket", lambda: ticket_auth("alice-ticket", authid="alice")),
    "wampcra": ("bob", "wampcra", lambda: wampcra_auth("bob-secret", authid="bob")),
    "wampcra-salted": ("carol", "wampcra", lambda: wampcra_auth("carol-secret", authid="carol")),
    "cryptosign": ("dave", "cryptosign", lambda: cryptosign_auth(DAVE, authid="dave")),
    "scram": (
        "erin",
        "scram",
        lambda: scram_auth("erin-password", authid="erin", spelling="scram"),
    ),
}

# What Crossbar 26.10.1 answers (ABORT reason and message); the spec and our router
# say wamp.error.authentication_failed (docs/interop.md).
BAD: dict[str, tuple[Callable[[], ClientAuth], str]] = {
    "ticket": (
        lambda: ticket_auth("wrong-ticket", authid="alice"),
        "ticket in static WAMP-Ticket authentication is invalid",
    ),
    "wampcra": (
        lambda: wampcra_auth("wrong-secret", authid="bob"),
        "WAMP-CRA client signature is invalid",
    ),
    "wampcra-salted": (
        lambda: wampcra_auth("wrong-secret", authid="carol"),
        "WAMP-CRA client signature is invalid",
    ),
    "cryptosign": (
        lambda: cryptosign_auth(wamp_core.CryptosignKey.generate(), authid="dave"),
        "extra.pubkey provided does not match any one of authorized_keys for the principal",
    ),
    "scram": (
        lambda: scram_auth("wrong-password", authid="erin", spelling="scram"),
        "SCRAM authentication failed",
    ),
    "unknown authid": (
        lambda: ticket_auth("x", authid="mallory"),
        'no principal with authid "mallory" exists',
    ),
}


@pytest.mark.parametrize("transport", ["ws", "rs"])
@pytest.mark.parametrize("method", list(GOOD))
async def test_join_with_each_method(
    crossbar_auth: dict[str, str], method: str, transport: str
) -> None:
    authid, authmethod, make_auth = GOOD[method]
    with trio.fail_after(60):
        async with connect(crossbar_auth[transport], "realm1", **make_auth()) as session:
            assert session.authid == authid
            assert session.authrole == "user"
            assert session.authmethod == authmethod

            async def whoami(*, details: Any) -> list[str | None]:
                return [details.caller_authid, details.caller_authrole]

            procedure = f"com.example.{transport}.{method}.whoami"
            await session.register(procedure, whoami)
            assert await session.call(procedure) == [authid, "user"]

            # Role "user" may only use com.example.*
            with pytest.raises(ApplicationError) as info:
                await session.call(f"org.other.{transport}.{method}")
            assert info.value.error == "wamp.error.not_authorized"


@pytest.mark.parametrize("method", list(BAD))
async def test_wrong_secret_is_refused(crossbar_auth: dict[str, str], method: str) -> None:
    make_auth, message = BAD[method]
    with trio.fail_after(60), pytest.raises(JoinError) as info:
        async with connect(crossbar_auth["ws"], "realm1", **make_auth()):
            pass  # pragma: no cover - the join must fail
    assert info.value.reason == "wamp.error.not_authorized"
    assert info.value.message == message
