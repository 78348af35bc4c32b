"""Dynamic authentication through a WAMP procedure (wamp_core._dynauth)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.core.test_router import Hub, Wire, assert_clean, hello, roles_with
from wamp_core import (
    Abort,
    Accept,
    AnonymousAuthenticator,
    AuthChallenge,
    Authenticate,
    AuthOutcome,
    Call,
    Challenge,
    Deny,
    Error,
    ErrorURI,
    HelloInfo,
    Interrupt,
    Invocation,
    MessageType,
    Pending,
    ProcedureAuthenticator,
    Register,
    Registered,
    Result,
    Router,
    SessionState,
    Welcome,
    Yield,
)

PROC = "com.example.authenticate"
FAILED = ErrorURI.AUTHENTICATION_FAILED


class PerRealm:
    """Anonymous in realm ``auth`` (where the authenticator lives), dynamic elsewhere."""

    def __init__(self, dynamic: ProcedureAuthenticator) -> None:
        self.dynamic = dynamic

    def hello(self, info: HelloInfo) -> AuthOutcome | Pending[AuthOutcome]:
        if info.realm == "auth":
            return AnonymousAuthenticator("authenticator").hello(info)
        return self.dynamic.hello(info)

    def authenticate(
        self, info: HelloInfo, challenge: AuthChallenge, signature: str, extra: dict[str, Any]
    ) -> AuthOutcome | Pending[AuthOutcome]:
        return self.dynamic.authenticate(info, challenge, signature, extra)


def setup(*, register: bool = True, ticket: bool = False) -> tuple[Hub, Wire]:
    router = Router(["realm1", "auth"])
    router.authenticator = PerRealm(ProcedureAuthenticator(router, "auth", PROC, ticket=ticket))
    hub = Hub(router)
    auth = hub.joined_wire(realm="auth", roles=roles_with(call_canceling=True))
    if register:
        auth.send(Register(auth.req(), {}, PROC))
        auth.one(Registered)
    return hub, auth


def waiting(hub: Hub, auth: Wire, **details: Any) -> tuple[Wire, Invocation]:
    client = hub.wire(transport={"peer": "tcp4:1.2.3.4:5"})
    client.send(hello(**details))
    invocation = auth.one(Invocation)
    assert client.take() == []
    assert client.slot.state is SessionState.CHALLENGING
    return client, invocation


def test_admitted_with_the_role_the_procedure_returned() -> None:
    hub, auth = setup()
    client, inv = waiting(hub, auth, authid="joe", authextra={"k": 1})
    realm, authid, details = inv.args or []
    assert (realm, authid) == ("realm1", "joe")
    assert details == {
        "authmethods": ["anonymous"],
        "session": details["session"],
        "transport": {"peer": "tcp4:1.2.3.4:5"},
        "authid": "joe",
        "authextra": {"k": 1},
    }
    assert hub.router.next_deadline() == 10.0
    auth.send(Yield(inv.request, {}, [{"role": "user", "extra": {"x": 1}}]))
    welcome = client.one(Welcome)
    assert welcome.details["authid"] == "joe"
    assert welcome.details["authrole"] == "user"
    assert welcome.details["authmethod"] == "dynamic"
    assert welcome.details["authprovider"] == "dynamic"
    assert welcome.details["authextra"] == {"x": 1}
    assert welcome.session == details["session"]
    assert hub.router.next_deadline() is None  # the timer was stopped
    assert auth.take() == []


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        (["user"], None, ("dynamic-", "user", "dynamic", "dynamic")),
        (
            [{"role": "r", "authid": "a", "authmethod": "m", "authprovider": "p"}],
            None,
            ("a", "r", "m", "p"),
        ),
        (None, {"role": "k"}, ("dynamic-", "k", "dynamic", "dynamic")),
        (None, None, None),
        ([42], None, None),
        ([{"role": ""}], None, None),
        ([{"role": "r", "authid": 5}], None, None),
        ([{"role": "r", "extra": []}], None, None),
    ],
)
def test_results(
    args: list[Any] | None, kwargs: dict[str, Any] | None, expected: tuple[str, ...] | None
) -> None:
    hub, auth = setup()
    client, inv = waiting(hub, auth)
    assert (inv.args or [])[1] is None  # no authid in HELLO
    auth.send(Yield(inv.request, {}, args, kwargs))
    if expected is None:
        abort = client.one(Abort)
        assert abort.reason == FAILED
        assert abort.details == {"message": "authentication failed"}
        assert client.slot.state is SessionState.CLOSED
        return
    details = client.one(Welcome).details
    got = (details["authid"], details["authrole"], details["authmethod"], details["authprovider"])
    assert got[0].startswith(expected[0])
    assert got[1:] == expected[1:]


def test_denied_on_error() -> None:
    hub, auth = setup()
    client, inv = waiting(hub, auth, authid="joe")
    auth.send(Error(MessageType.INVOCATION, inv.request, {}, "com.example.nope", ["no joe"]))
    abort = client.one(Abort)
    assert (abort.reason, abort.details) == (FAILED, {"message": "authentication failed"})
    assert hub.router.next_deadline() is None


def test_denied_when_nobody_registered() -> None:
    hub, auth = setup(register=False)
    client = hub.wire()
    client.send(hello())
    assert client.one(Abort).reason == FAILED
    assert hub.router.next_deadline() is None
    assert auth.take() == []


def test_denied_on_timeout_and_the_late_answer_is_ignored() -> None:
    hub, auth = setup()
    client, inv = waiting(hub, auth)
    hub.router.tick(9.9)
    assert client.take() == []
    hub.router.tick(10.0)
    assert client.one(Abort).reason == FAILED
    interrupt = auth.one(Interrupt)
    assert interrupt.request == inv.request
    auth.send(Yield(inv.request, {}, ["user"]))
    assert client.take() == []
    assert auth.take() == []
    assert client.slot.state is SessionState.CLOSED


def test_client_abort_while_waiting() -> None:
    hub, auth = setup()
    client, inv = waiting(hub, auth)
    client.send(Abort({}, "wamp.close.close_realm"))
    assert client.slot.state is SessionState.CLOSED
    assert isinstance(auth.one(Interrupt), Interrupt)
    assert hub.router.next_deadline() is None
    auth.send(Yield(inv.request, {}, ["user"]))
    assert client.take() == []
    # The transport may HELLO again.
    client.send(hello())
    inv = auth.one(Invocation)
    auth.send(Yield(inv.request, {}, ["user"]))
    assert client.one(Welcome).details["authrole"] == "user"


def test_authenticate_while_waiting_is_a_violation() -> None:
    hub, auth = setup()
    client, _ = waiting(hub, auth)
    message = client.violation(Authenticate("x", {}))
    assert message == "AUTHENTICATE while no CHALLENGE is outstanding"
    assert isinstance(auth.one(Interrupt), Interrupt)


def test_transport_gone_while_waiting() -> None:
    hub, auth = setup()
    client, inv = waiting(hub, auth)
    hub.drop(client)
    assert isinstance(auth.one(Interrupt), Interrupt)
    auth.send(Yield(inv.request, {}, ["user"]))
    hub.router.tick(100.0)
    assert auth.take() == []
    assert list(hub.router.sessions) == [auth.session_id]
    hub.drop(auth)
    assert_clean(hub.router)


def test_shutdown_while_waiting() -> None:
    hub, auth = setup()
    client, _ = waiting(hub, auth)
    hub.router.shutdown()
    # The authenticator's session closes first: the call ends, the client is refused.
    assert client.one(Abort).reason == FAILED
    assert client.slot.state is SessionState.CLOSED
    assert hub.router.next_deadline() is None


def test_internal_session_is_in_no_session_list() -> None:
    hub, auth = setup()
    client, inv = waiting(hub, auth)
    auth.send(Yield(inv.request, {}, ["user"]))
    client.one(Welcome)
    for procedure, expected in [
        ("wamp.session.count", [1]),
        ("wamp.session.list", [[auth.session_id]]),
    ]:
        auth.send(Call(auth.req(), {}, procedure))
        assert auth.one(Result).args == expected
    assert set(hub.router.sessions) == {auth.session_id, client.slot.session_id}


def test_ticket_mode() -> None:
    hub, auth = setup(ticket=True)
    client = hub.wire()
    client.send(hello(authid="joe", authmethods=["ticket"]))
    assert client.one(Challenge).authmethod == "ticket"
    client.send(Authenticate("secret", {}))
    inv = auth.one(Invocation)
    assert (inv.args or [])[2]["ticket"] == "secret"
    auth.send(Yield(inv.request, {}, [{"role": "user"}]))
    details = client.one(Welcome).details
    assert (details["authid"], details["authmethod"]) == ("joe", "ticket")


def test_ticket_mode_needs_ticket() -> None:
    hub, _ = setup(ticket=True)
    client = hub.wire()
    client.send(hello())
    assert client.one(Abort).reason == ErrorURI.NO_MATCHING_AUTH_METHOD


def test_call_procedure_and_cancel() -> None:
    hub, auth = setup()
    replies: list[Result | Error] = []
    cancel = hub.router.call_procedure("auth", "com.example.none", replies.append)
    (error,) = replies
    assert isinstance(error, Error)
    assert error.error == ErrorURI.NO_SUCH_PROCEDURE
    cancel()  # after the reply: nothing happens
    cancel = hub.router.call_procedure("auth", PROC, replies.append, args=[1], kwargs={"a": 2})
    inv = auth.one(Invocation)
    assert (inv.args, inv.kwargs) == ([1], {"a": 2})
    cancel()
    assert isinstance(auth.one(Interrupt), Interrupt)
    assert len(replies) == 1


def test_pending() -> None:
    cancelled: list[bool] = []
    pending: Pending[AuthOutcome] = Pending(lambda: cancelled.append(True))
    assert not pending.done
    assert pending.resolve(Deny())
    assert pending.done
    assert not pending.resolve(Accept("a", "b"))
    pending.cancel()
    assert cancelled == []
    assert pending.outcome == Deny()
    other: Pending[AuthOutcome] = Pending()
    other.cancel()
    assert other.cancelled
    assert other.done
    assert not other.resolve(Deny())
