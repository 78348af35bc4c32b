"""An Autobahn|Python (asyncio) client that authenticates to a router, for interop tests.

Run as ``python autobahn_auth_probe.py URL METHOD AUTHID SECRET [REALM]``:
URL ``ws://host:port/path``; METHOD ``ticket``, ``wampcra``, ``cryptosign``
(SECRET: the private seed in hex) or ``scram`` (Autobahn's spelling). The
answers come from Autobahn's own authenticators (``autobahn.wamp.auth``:
``AuthTicket``, ``AuthWampCra`` with ``derive_key``/``compute_wcs``,
``AuthCryptoSign`` with ``autobahn.wamp.cryptosign.CryptosignKey``, ``AuthScram``
which also checks the router's signature in WELCOME), driven from
``ApplicationSession.onChallenge``/``onWelcome``. Once joined the probe
registers a procedure, calls it and leaves; it prints one JSON line with the
WELCOME details, the call's result, or the ABORT reason.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any
from urllib.parse import urlparse

import txaio

txaio.use_asyncio()

from autobahn.asyncio.wamp import ApplicationSession  # noqa: E402
from autobahn.asyncio.websocket import WampWebSocketClientFactory  # noqa: E402
from autobahn.wamp.auth import create_authenticator  # noqa: E402
from autobahn.wamp.serializer import JsonSerializer  # noqa: E402
from autobahn.wamp.types import ComponentConfig  # noqa: E402

SECRET_KEY = {"ticket": "ticket", "wampcra": "secret", "cryptosign": "privkey", "scram": "password"}


class AuthProbe(ApplicationSession):
    """Joins with one authenticator, calls a procedure of its own, leaves."""

    authenticator: Any
    login_authid: str
    result: dict[str, Any]
    done: asyncio.Future[dict[str, Any]]

    def onConnect(self) -> None:
        self.join(
            self.config.realm,
            authmethods=[self.authenticator.name],
            authid=self.login_authid,
            authextra=self.authenticator.authextra,
        )

    def onChallenge(self, challenge: Any) -> Any:
        self.result["challenged"] = challenge.method
        return self.authenticator.on_challenge(self, challenge)

    def onWelcome(self, msg: Any) -> str | None:
        # AuthScram checks the router's ServerSignature here: a string denies.
        denied: str | None = self.authenticator.on_welcome(self, msg.authextra)
        self.result["welcome_denied"] = denied
        return denied

    async def onJoin(self, details: Any) -> None:
        self.result.update(
            joined=True,
            authid=details.authid,
            authrole=details.authrole,
            authmethod=details.authmethod,
            authprovider=details.authprovider,
        )
        try:
            await self.register(lambda a, b: a + b, "com.example.add2")
            self.result["call"] = await self.call("com.example.add2", 2, 3)
        except Exception as exc:  # report, don't hang
            self.result["exception"] = repr(exc)
        self.leave()

    def onLeave(self, details: Any) -> None:
        self.result["leave_reason"] = details.reason
        self.result["leave_message"] = details.message
        self.disconnect()

    def onDisconnect(self) -> None:
        if not self.done.done():
            self.done.set_result(self.result)


async def main(url: str, method: str, authid: str, secret: str, realm: str) -> int:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[dict[str, Any]] = loop.create_future()
    options: dict[str, Any] = {SECRET_KEY[method]: secret}
    if method != "ticket":
        options["authid"] = authid
    authenticator = create_authenticator(method, **options)

    def make_session() -> AuthProbe:
        session = AuthProbe(ComponentConfig(realm=realm))
        session.authenticator = authenticator
        session.login_authid = authid
        session.done = done
        session.result = {"joined": False}
        return session

    parsed = urlparse(url)
    factory = WampWebSocketClientFactory(make_session, url=url, serializers=[JsonSerializer()])
    await loop.create_connection(factory, parsed.hostname or "127.0.0.1", parsed.port or 80)
    result = await asyncio.wait_for(done, 30)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    url, method, authid, secret = sys.argv[1:5]
    realm = sys.argv[5] if len(sys.argv) > 5 else "realm1"
    sys.exit(asyncio.run(main(url, method, authid, secret, realm)))
