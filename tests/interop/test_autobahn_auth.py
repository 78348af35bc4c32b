"""Autobahn|Python's client (asyncio) authenticates against our router.

Our router (``PrincipalAuthenticator`` with ticket, WAMP-CRA, cryptosign and
Autobahn's ``scram`` spelling) runs in this process on loopback port 0; the
Autobahn client runs in a subprocess (``autobahn_auth_probe.py``) with
Autobahn's own authenticators and reports what it saw as JSON.
"""

from __future__ import annotations

import json
import pathlib
import sys
from typing import Any

import pytest
import trio

import wamp_core
from wamp_core import ErrorURI
from wamp_trio import Endpoint, RouterHost, serve_router
from wamp_trio._config import TcpListener

PROBE = pathlib.Path(__file__).with_name("autobahn_auth_probe.py")

pytest.importorskip("autobahn", reason="the interop tests need autobahn (in the test extras)")
# Autobahn's cryptosign needs pynacl, base58 and ecdsa; its scram argon2-cffi and passlib.
pytest.importorskip("nacl", reason="Autobahn's cryptosign needs pynacl (in the test extras)")
pytest.importorskip("base58", reason="Autobahn's cryptosign needs base58 (in the test extras)")
pytest.importorskip("ecdsa", reason="Autobahn's cryptosign needs ecdsa (in the test extras)")
pytest.importorskip("passlib", reason="Autobahn's scram needs passlib (in the test extras)")

CLIENT_SEED = "4d57d97a68f555696620a6d849c0ce582568518d729eb753dc7c732de2804510"
OTHER_SEED = "00" * 32
# Autobahn's client accepts any argon2 costs; small ones keep the test fast.


def make_router() -> wamp_core.Router:
    principals = {
        "alice": wamp_core.Principal("user", ticket="alice-ticket"),
        "bob": wamp_core.Principal("user", wampcra=wamp_core.CraCredential("bob-secret")),
        "carol": wamp_core.Principal(
            "admin", wampcra=wamp_core.CraCredential.salted("carol-secret", "carol-salt", 100, 32)
        ),
        "dave": wamp_core.Principal(
            "device", cryptosign=[wamp_core.CryptosignKey(CLIENT_SEED).public_key_hex]
        ),
        "erin": wamp_core.Principal(
            "user",
            credentials={
                # Autobahn's AuthScram runs its own argon2id-13 (see docs/authentication.md).
                "scram": wamp_core.derive_scram_credential(
                    "erin-password", kdf="argon2id-13", iterations=2, memory=1024
                )
            },
        ),
    }
    authenticator = wamp_core.PrincipalAuthenticator(
        {"realm1": principals},
        methods=[
            wamp_core.TicketMethod(),
            wamp_core.WampCraMethod(),
            wamp_core.CryptosignMethod(),
            wamp_core.ScramMethod("scram"),
        ],
    )
    return wamp_core.Router(["realm1"], authenticator=authenticator)


async def run_probe(url: str, method: str, authid: str, secret: str) -> dict[str, Any]:
    with trio.fail_after(60):
        result = await trio.run_process(
            [sys.executable, str(PROBE), url, method, authid, secret],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    report: dict[str, Any] = json.loads(result.stdout.decode().strip().splitlines()[-1])
    return report


async def probe(method: str, authid: str, secret: str) -> tuple[dict[str, Any], RouterHost]:
    host = RouterHost(make_router())
    async with trio.open_nursery() as nursery:
        endpoints: list[Endpoint] = await nursery.start(serve_router, host, [TcpListener(port=0)])
        url = next(e.url for e in endpoints if e.url.startswith("ws://"))
        report = await run_probe(url, method, authid, secret)
        nursery.cancel_scope.cancel()
    return report, host


GOOD = [
    ("ticket", "alice", "alice-ticket", "user"),
    ("wampcra", "bob", "bob-secret", "user"),
    ("wampcra", "carol", "carol-secret", "admin"),  # salted
    ("cryptosign", "dave", CLIENT_SEED, "device"),
    ("scram", "erin", "erin-password", "user"),
]


@pytest.mark.parametrize(
    ("method", "authid", "secret", "authrole"),
    GOOD,
    ids=["ticket", "wampcra", "wampcra-salted", "cryptosign", "scram"],
)
async def test_autobahn_authenticates(method: str, authid: str, secret: str, authrole: str) -> None:
    report, host = await probe(method, authid, secret)
    assert "exception" not in report, report
    assert report["challenged"] == method
    assert report["welcome_denied"] is None  # scram: Autobahn checked our ServerSignature
    assert report["joined"] is True
    assert (report["authid"], report["authrole"]) == (authid, authrole)
    assert (report["authmethod"], report["authprovider"]) == (method, "static")
    assert report["call"] == 5
    assert report["leave_reason"] == "wamp.close.goodbye_and_out"
    assert host.router.sessions == {}


BAD = [
    ("ticket", "alice", "wrong-ticket"),
    ("wampcra", "bob", "wrong-secret"),
    ("wampcra", "carol", "wrong-secret"),
    ("cryptosign", "dave", OTHER_SEED),
    ("scram", "erin", "wrong-password"),
]


@pytest.mark.parametrize(
    ("method", "authid", "secret"),
    BAD,
    ids=["ticket", "wampcra", "wampcra-salted", "cryptosign", "scram"],
)
async def test_autobahn_wrong_credentials_are_refused(
    method: str, authid: str, secret: str
) -> None:
    report, host = await probe(method, authid, secret)
    assert report["joined"] is False, report
    assert report["leave_reason"] == ErrorURI.AUTHENTICATION_FAILED
    assert report["leave_message"] == "authentication failed"
    assert host.router.sessions == {}
