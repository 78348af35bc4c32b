"""Realm isolation and authorization under a fuzzer (sans-IO).

A hypothesis state machine drives well-behaved sessions in two realms, with
role-based permissions, and a hostile session (role ``nobody``) that sends
garbage bytes and message-shaped junk made of the IDs and URIs in use. After
every step the invariants are checked against a model kept by the test:

* no EVENT, INVOCATION or RESULT crosses realms (every payload names the realm
  it was sent in);
* a session receives exactly the EVENTs of its own realm's publications that
  match its subscriptions, each of which its role may subscribe to;
* a request the role may not make gets ERROR ``wamp.error.not_authorized``
  (an unacknowledged PUBLISH: nothing) and changes no table and no other session;
* the meta API answers about the caller's realm only;
* the hostile session never changes anyone else's state, and its protocol
  violations end only its own session.
"""

from __future__ import annotations

import random
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from wamp_core import (
    CLIENT_ROLES,
    MAX_ID,
    Abort,
    Accept,
    AuthChallenge,
    AuthOutcome,
    Call,
    Deny,
    Error,
    ErrorURI,
    Event,
    Goodbye,
    Hello,
    HelloInfo,
    Invocation,
    Message,
    MessageType,
    Permission,
    Publish,
    Published,
    Register,
    Registered,
    RemoteProtocolError,
    Result,
    Role,
    RoleBasedAuthorizer,
    Router,
    RouterSession,
    SequentialIds,
    SessionState,
    Subscribe,
    Subscribed,
    Unregister,
    Unregistered,
    Unsubscribe,
    Unsubscribed,
    Welcome,
    Yield,
    get_serializer,
)

REALMS = ("realm1", "realm2")
NOT_AUTHORIZED = ErrorURI.NOT_AUTHORIZED
META = (
    "wamp.session.count",
    "wamp.session.list",
    "wamp.session.get",
    "wamp.registration.list",
    "wamp.registration.get",
    "wamp.registration.list_callees",
    "wamp.subscription.list",
    "wamp.subscription.get",
    "wamp.subscription.list_subscribers",
)
EVERY = {"call": True, "register": True, "publish": True, "subscribe": True}
USER = Role(
    "user",
    [
        Permission("com.a.", "prefix", **EVERY),
        Permission("com.a.secret.", "prefix"),
        *(Permission(uri, "exact", call=True) for uri in META),
    ],
)
GUEST = Role(
    "guest",
    [
        Permission("com.a.", "prefix", call=True, subscribe=True),
        Permission("com.a.secret.", "prefix"),
    ],
)
NOBODY = Role("nobody")
ROLES = ("user", "guest", "nobody")

TOPICS = ("com.a.x", "com.a.xy", "com.a.y", "com.a.secret.z", "com.b.x")
SUBSCRIPTIONS = (
    *((topic, "exact") for topic in TOPICS),
    ("com.a.x", "prefix"),
    ("com.a.", "prefix"),
    ("com.a.secret.", "prefix"),
    ("com..x", "wildcard"),
    ("com.a..z", "wildcard"),
)
PROCEDURES = ("com.a.p", "com.a.pq", "com.a.q", "com.a.secret.p", "com.b.p")
REGISTRATIONS = (
    *((procedure, "exact") for procedure in PROCEDURES),
    ("com.a.p", "prefix"),
    ("com.a.", "prefix"),
    ("com..p", "wildcard"),
)
URIS = (*TOPICS, *PROCEDURES, *META, "com.a.", "com..x", "wamp.session.kill_all")


def allowed(role: str, action: str, uri: str, match: str = "exact") -> bool:
    """The test's own statement of the policy above (an oracle, not the code)."""
    if match == "exact":
        if uri in META:
            return role == "user" and action == "call"
        if uri.startswith("com.a.secret.") or not uri.startswith("com.a."):
            return False
        return role == "user" or (role == "guest" and action in ("call", "subscribe"))
    if (uri, match) == ("com.a.x", "prefix") or (uri, match) == ("com.a.p", "prefix"):
        # Every URI under it lies under com.a. and outside com.a.secret.
        return role == "user" or (role == "guest" and action == "subscribe")
    return False  # each other pattern reaches com.a.secret.* or com.b.*


def matches(uri: str, match: str, topic: str) -> bool:
    if match == "exact":
        return topic == uri
    if match == "prefix":
        return topic.startswith(uri)
    parts, pattern = topic.split("."), uri.split(".")
    return len(parts) == len(pattern) and all(p in ("", t) for p, t in zip(pattern, parts))


M = TypeVar("M", bound=Message)


def only(messages: list[Message | None], cls: type[M]) -> M:
    """The single message of ``messages``, which must be a ``cls``."""
    assert len(messages) == 1, messages
    message = messages[0]
    assert isinstance(message, cls), message
    return message


class RoleFromHello:
    """Admits every HELLO with the role it names in ``authextra.role``."""

    def hello(self, info: HelloInfo) -> AuthOutcome:
        extra = info.details.get("authextra", {})
        return Accept(info.authid or "someone", extra.get("role", "nobody"))

    def authenticate(
        self, info: HelloInfo, challenge: AuthChallenge, signature: str, extra: dict[str, Any]
    ) -> AuthOutcome:
        return Deny()


class Agent:
    """A hand-driven session and what the model expects of it."""

    def __init__(self, router: Router, realm: str, role: str, hostile: bool = False) -> None:
        self.serializer = get_serializer("json")
        self.slot: RouterSession = router.attach(self.serializer)
        self.realm = realm
        self.role = role
        self.hostile = hostile
        self.requests = SequentialIds()
        self.inbox: list[Message | None] = []
        self.subs: dict[int, tuple[str, str]] = {}  # subscription ID -> (uri, match)
        self.regs: dict[int, tuple[str, str]] = {}  # registration ID -> (uri, match)
        # INVOCATIONs waiting for this callee's YIELD: (invocation, caller, CALL request ID)
        self.invocations: list[tuple[Invocation, Agent, int]] = []

    @property
    def session_id(self) -> int:
        return self.slot.session_id

    def __repr__(self) -> str:
        kind = "hostile" if self.hostile else self.role
        return f"<Agent {kind}@{self.realm} {self.session_id}>"


class Isolation(RuleBasedStateMachine):
    """Sessions of two realms, one hostile; invariants after every step."""

    def __init__(self) -> None:
        super().__init__()
        self.router = Router()
        self.agents: list[Agent] = []
        self.hostile: Agent | None = None
        self.serial = 0

    # -- plumbing ----------------------------------------------------------------------

    def pump(self) -> None:
        """Decode everything the router queued into the agents' inboxes."""
        by_slot = {agent.slot: agent for agent in self.all_agents()}
        for delivery in self.router.data_to_send():
            agent = by_slot.get(delivery.session)
            assert agent is not None, delivery  # output only for attached sessions
            if delivery.data is None:
                agent.inbox.append(None)
            else:
                agent.inbox.extend(agent.serializer.decode(delivery.data))

    def all_agents(self) -> list[Agent]:
        return self.agents + ([self.hostile] if self.hostile is not None else [])

    def send(self, agent: Agent, message: Message) -> dict[Agent, list[Message | None]]:
        """Feed ``message`` from ``agent``; what every agent received, by agent."""
        self.router.receive_message(agent.slot, message)
        self.pump()
        return self.collect()

    def collect(self) -> dict[Agent, list[Message | None]]:
        out = {}
        for agent in self.all_agents():
            if agent.inbox:
                out[agent] = agent.inbox
                agent.inbox = []
        return out

    def reply(self, agent: Agent, message: Message) -> tuple[Message, dict[Agent, list[Any]]]:
        """Feed a request; its one reply, and what the other agents received."""
        received = self.send(agent, message)
        mine = received.pop(agent, [])
        assert len(mine) == 1, (message, mine)
        answer = mine[0]
        assert answer is not None
        return answer, received

    def snapshot(self) -> Any:
        """The routing state every realm holds, as plain values."""
        state = {}
        for name, realm in self.router.realms.items():
            subs = {
                s.id: (s.uri, s.match, sorted(x.session_id for x in s.subscribers))
                for s in realm.broker.subscriptions.values()
            }
            regs = {
                r.id: (r.uri, r.match, [x.session_id for x in r.callees])
                for r in realm.dealer.registrations.values()
            }
            sessions = {
                sid: (sorted(s.calls), sorted(s.invocations), s.state.name)
                for sid, s in realm.sessions.items()
            }
            state[name] = (subs, regs, sessions)
        return state

    def join(self, realm: str, role: str, hostile: bool = False) -> Agent:
        agent = Agent(self.router, realm, role, hostile)
        if hostile:
            self.hostile = agent
        else:
            self.agents.append(agent)
        details = {"roles": CLIENT_ROLES, "authid": role, "authextra": {"role": role}}
        welcome, others = self.reply(agent, Hello(realm, details))
        assert isinstance(welcome, Welcome), welcome
        assert not others  # nobody may subscribe to the meta topics
        return agent

    def payload(self, agent: Agent, what: str, uri: str) -> list[Any]:
        self.serial += 1
        return [agent.realm, what, uri, self.serial]

    # -- well-behaved sessions -----------------------------------------------------------

    @initialize(strict=st.booleans())
    def start(self, strict: bool) -> None:
        roles = {"user": USER, "guest": GUEST, "nobody": NOBODY}
        authorizer = RoleBasedAuthorizer(dict.fromkeys(REALMS, roles))
        # Seeded IDs: a replayed example must meet the same IDs (hypothesis draws among them).
        ids = random.Random(8)
        self.router = Router(
            REALMS,
            authenticator=RoleFromHello(),
            authorizer=authorizer,
            strict_request_ids=strict,
            id_source=lambda: ids.randint(1, MAX_ID),
            rng=random.Random(8),
        )
        for realm in REALMS:
            self.join(realm, "user")
            self.join(realm, "guest")

    @precondition(lambda self: len(self.agents) < 8)
    @rule(realm=st.sampled_from(REALMS), role=st.sampled_from(ROLES))
    def join_session(self, realm: str, role: str) -> None:
        self.join(realm, role)

    @rule(data=st.data(), wanted=st.sampled_from(SUBSCRIPTIONS))
    def subscribe(self, data: st.DataObject, wanted: tuple[str, str]) -> None:
        agent: Agent = data.draw(st.sampled_from(self.agents))
        uri, match = wanted
        before = self.snapshot()
        options = {} if match == "exact" else {"match": match}
        answer, others = self.reply(agent, Subscribe(agent.requests(), options, uri))
        assert not others
        if allowed(agent.role, "subscribe", uri, match):
            assert isinstance(answer, Subscribed), (agent, wanted, answer)
            agent.subs[answer.subscription] = (uri, match)
        else:
            assert isinstance(answer, Error), (agent, wanted, answer)
            assert answer.error == NOT_AUTHORIZED, answer
            assert self.snapshot() == before

    @precondition(lambda self: any(agent.subs for agent in self.agents))
    @rule(data=st.data())
    def unsubscribe(self, data: st.DataObject) -> None:
        agent = data.draw(st.sampled_from([a for a in self.agents if a.subs]))
        subscription = data.draw(st.sampled_from(sorted(agent.subs)))
        answer, others = self.reply(agent, Unsubscribe(agent.requests(), subscription))
        assert isinstance(answer, Unsubscribed), answer
        assert not others
        del agent.subs[subscription]

    @rule(data=st.data(), wanted=st.sampled_from(REGISTRATIONS))
    def register(self, data: st.DataObject, wanted: tuple[str, str]) -> None:
        agent: Agent = data.draw(st.sampled_from(self.agents))
        uri, match = wanted
        before = self.snapshot()
        options = {} if match == "exact" else {"match": match}
        answer, others = self.reply(agent, Register(agent.requests(), options, uri))
        assert not others
        if not allowed(agent.role, "register", uri, match):
            assert isinstance(answer, Error), (agent, wanted, answer)
            assert answer.error == NOT_AUTHORIZED, answer
            assert self.snapshot() == before
        elif self.registered(agent.realm, uri, match) is not None:
            assert isinstance(answer, Error), answer
            assert answer.error == ErrorURI.PROCEDURE_ALREADY_EXISTS, answer
        else:
            assert isinstance(answer, Registered), (agent, wanted, answer)
            agent.regs[answer.registration] = (uri, match)

    @precondition(lambda self: any(agent.regs for agent in self.agents))
    @rule(data=st.data())
    def unregister(self, data: st.DataObject) -> None:
        agent = data.draw(st.sampled_from([a for a in self.agents if a.regs]))
        registration = data.draw(st.sampled_from(sorted(agent.regs)))
        answer, others = self.reply(agent, Unregister(agent.requests(), registration))
        assert isinstance(answer, Unregistered), answer
        del agent.regs[registration]
        # Calls already invoked still finish (nothing is sent to their callers now).
        assert not others

    def registered(self, realm: str, uri: str, match: str) -> Agent | None:
        for agent in self.agents:
            if agent.realm == realm and (uri, match) in agent.regs.values():
                return agent
        return None

    def callee_for(self, realm: str, procedure: str) -> Agent | None:
        """The callee a CALL reaches: an exact registration, else the longest prefix."""
        exact = self.registered(realm, procedure, "exact")
        if exact is not None:
            return exact
        # The policy allows no wildcard registration, and one prefix one.
        best: tuple[int, Agent] | None = None
        for agent in self.agents:
            for uri, match in agent.regs.values():
                assert match != "wildcard"
                if agent.realm != realm or match != "prefix" or not procedure.startswith(uri):
                    continue
                if best is None or len(uri) > best[0]:
                    best = (len(uri), agent)
        return None if best is None else best[1]

    @rule(data=st.data(), acknowledge=st.booleans(), topic=st.sampled_from(TOPICS))
    def publish(self, data: st.DataObject, acknowledge: bool, topic: str) -> None:
        agent: Agent = data.draw(st.sampled_from(self.agents))
        before = self.snapshot()
        options = {"acknowledge": True} if acknowledge else {}
        args = self.payload(agent, "event", topic)
        received = self.send(agent, Publish(agent.requests(), options, topic, args))
        mine = received.pop(agent, [])
        permitted = allowed(agent.role, "publish", topic)
        if not permitted:
            if acknowledge:
                assert len(mine) == 1, mine
                assert isinstance(mine[0], Error), mine
                assert mine[0].error == NOT_AUTHORIZED
            else:
                assert mine == []
            assert not received  # nobody got an EVENT
            assert self.snapshot() == before
            return
        if acknowledge:
            only(mine, Published)
        else:
            assert mine == []
        for other in self.agents:
            expected = sorted(
                sid
                for sid, (uri, match) in other.subs.items()
                if other is not agent and other.realm == agent.realm and matches(uri, match, topic)
            )
            delivered = received.pop(other, [])
            got = [m for m in delivered if isinstance(m, Event)]
            assert len(got) == len(delivered), delivered
            assert sorted(m.subscription for m in got) == expected, (other, topic, got)
            for event in got:
                assert event.args == args  # from this realm, this publication
        assert not received, received  # the hostile session subscribes to nothing

    @rule(data=st.data(), procedure=st.sampled_from(PROCEDURES))
    def call(self, data: st.DataObject, procedure: str) -> None:
        agent: Agent = data.draw(st.sampled_from(self.agents))
        before = self.snapshot()
        request = agent.requests()
        args = self.payload(agent, "call", procedure)
        received = self.send(agent, Call(request, {}, procedure, args))
        mine = received.pop(agent, [])
        callee = self.callee_for(agent.realm, procedure)
        if not allowed(agent.role, "call", procedure):
            assert only(mine, Error).error == NOT_AUTHORIZED, mine
            assert not received
            assert self.snapshot() == before
        elif callee is None:
            assert only(mine, Error).error == ErrorURI.NO_SUCH_PROCEDURE, mine
            assert not received
        else:
            if callee is not agent:
                assert mine == [], mine
                got = received.pop(callee, [])
            else:
                got = mine
            assert not received, received
            invocation = only(got, Invocation)
            assert invocation.args == args
            assert invocation.registration in callee.regs
            callee.invocations.append((invocation, agent, request))

    @precondition(lambda self: any(agent.invocations for agent in self.agents))
    @rule(data=st.data())
    def answer_invocation(self, data: st.DataObject) -> None:
        callee = data.draw(st.sampled_from([a for a in self.agents if a.invocations]))
        invocation, caller, request = callee.invocations.pop(0)
        result = [callee.realm, "result", invocation.request]
        received = self.send(callee, Yield(invocation.request, {}, result))
        assert received == {caller: [Result(request, {}, result)]}, received

    # -- the meta API ---------------------------------------------------------------------

    def ids_anywhere(self, only: str | None = None) -> dict[str, list[int]]:
        """Session, registration and subscription IDs of every realm (or of realm ``only``)."""
        sessions: list[int] = []
        registrations: list[int] = []
        subscriptions: list[int] = []
        for name, realm in self.router.realms.items():
            if only is not None and name != only:
                continue
            sessions.extend(realm.sessions)
            registrations.extend(realm.dealer.registrations)
            subscriptions.extend(realm.broker.subscriptions)
        return {"session": sessions, "registration": registrations, "subscription": subscriptions}

    @rule(data=st.data(), procedure=st.sampled_from(META))
    def meta(self, data: st.DataObject, procedure: str) -> None:
        agent: Agent = data.draw(st.sampled_from(self.agents))
        realm = self.router.realms[agent.realm]
        kind = procedure.split(".")[1]
        args: list[Any] = []
        if procedure.endswith((".get", "_callees", "_subscribers")):
            known = self.ids_anywhere()[kind] or [1]
            args = [data.draw(st.sampled_from(known))]
        answer, others = self.reply(agent, Call(agent.requests(), {}, procedure, args))
        assert not others
        if agent.role != "user":
            assert isinstance(answer, Error), answer
            assert answer.error == NOT_AUTHORIZED, answer
            return
        own = self.ids_anywhere(agent.realm)[kind]  # this realm's, of the kind asked about
        if args and args[0] not in own:  # another realm's, or gone: never revealed
            assert isinstance(answer, Error), answer
            assert answer.error == f"wamp.error.no_such_{kind}", answer
            return
        assert isinstance(answer, Result), answer
        assert answer.args is not None
        (value,) = answer.args
        if procedure == "wamp.session.count":
            assert value == len(realm.sessions)
        elif procedure == "wamp.session.list":
            assert sorted(value) == sorted(realm.sessions)
        elif procedure == "wamp.session.get":
            assert value["session"] == args[0]
        elif procedure.endswith(".list"):
            listed = [i for ids in value.values() for i in ids]
            assert sorted(listed) == sorted(own)
        elif procedure.endswith(".get"):
            assert value["id"] == args[0]
        else:  # the callees or subscribers of one of this realm's
            assert set(value) <= set(realm.sessions)

    # -- the hostile session --------------------------------------------------------------

    def hostile_session(self, realm: str) -> Agent:
        """The hostile session, joined afresh if its last one ended."""
        hostile = self.hostile
        if hostile is None or hostile.slot.state is not SessionState.ESTABLISHED:
            if hostile is not None:
                self.router.detach(hostile.slot)
            self.hostile = None
            hostile = self.join(realm, "nobody", hostile=True)
        return hostile

    def foreign_ids(self) -> list[int]:
        """Every ID a hostile session could try: other sessions', registrations',
        subscriptions', INVOCATION and CALL request IDs."""
        known = self.ids_anywhere()
        ids = [*known["session"], *known["registration"], *known["subscription"]]
        for agent in self.agents:
            for invocation, _, request in agent.invocations:
                ids.extend((invocation.request, request))
        return ids or [1]

    def hostile_feed(self, hostile: Agent, payload: bytes) -> list[Message | None]:
        """Feed the hostile session's ``payload``; check that nothing else moved;
        what the hostile session received."""
        hostile_id = hostile.session_id
        before = self.snapshot()
        try:
            self.router.receive_data(hostile.slot, payload)
        except RemoteProtocolError:
            violated = True
        else:
            violated = False
        self.pump()
        received = self.collect()
        mine = received.pop(hostile, [])
        assert not received, received  # nobody else hears a thing
        for message in mine:
            assert message is None or isinstance(message, (Error, Abort, Goodbye)), message
        if violated:
            assert hostile.slot.state is SessionState.FAILED
            assert isinstance(mine[0], Abort), mine
            assert mine[0].reason == ErrorURI.PROTOCOL_VIOLATION
            assert mine[-1] is None  # and the transport is closed
        after = self.snapshot()
        # Only the hostile session's own entry may have changed (it left, or
        # its own request counters moved).
        for name in REALMS:
            subs, regs, sessions = after[name]
            old_subs, old_regs, old_sessions = before[name]
            assert subs == old_subs
            assert regs == old_regs
            old_sessions.pop(hostile_id, None)
            sessions.pop(hostile_id, None)
            assert sessions == old_sessions
        return mine

    @rule(data=st.data(), realm=st.sampled_from(REALMS))
    def hostile_junk(self, data: st.DataObject, realm: str) -> None:
        hostile = self.hostile_session(realm)
        value: st.SearchStrategy[Any] = st.one_of(
            st.sampled_from(self.foreign_ids()),
            st.integers(min_value=-1, max_value=2**53 + 1),
            st.sampled_from(URIS),
            st.sampled_from([{}, {"match": "prefix"}, {"acknowledge": True}, None, [], "", 1.5]),
        )
        junk = st.one_of(
            st.binary(max_size=40),
            st.builds(
                lambda code, rest: hostile.serializer.dumps([code, *rest]),
                st.sampled_from([int(t) for t in MessageType] + [0, 99]),
                st.lists(value, max_size=5),
            ),
        )
        self.hostile_feed(hostile, data.draw(junk))

    @rule(
        data=st.data(),
        realm=st.sampled_from(REALMS),
        kind=st.sampled_from([MessageType.UNSUBSCRIBE, MessageType.UNREGISTER,
                              MessageType.YIELD, MessageType.ERROR, MessageType.CANCEL]),
    )  # fmt: skip
    def hostile_uses_foreign_ids(self, data: st.DataObject, realm: str, kind: MessageType) -> None:
        """Well-formed requests naming other sessions' subscriptions, registrations
        and calls: refused, and nobody else notices."""
        hostile = self.hostile_session(realm)
        known = self.ids_anywhere(hostile.realm)
        waiting = [entry for agent in self.agents for entry in agent.invocations]
        aimed = {
            MessageType.UNSUBSCRIBE: known["subscription"],
            MessageType.UNREGISTER: known["registration"],
            MessageType.YIELD: [invocation.request for invocation, _, _ in waiting],
            MessageType.ERROR: [invocation.request for invocation, _, _ in waiting],
            MessageType.CANCEL: [request for _, _, request in waiting],
        }[kind]
        target = data.draw(st.sampled_from(aimed or self.foreign_ids()))
        if data.draw(st.booleans()):  # or the same from the other realm
            target = data.draw(st.sampled_from(self.foreign_ids()))
        raw: list[Any]
        if kind in (MessageType.UNSUBSCRIBE, MessageType.UNREGISTER):
            raw = [int(kind), hostile.requests(), target]
        elif kind is MessageType.YIELD:
            raw = [int(kind), target, {}, ["forged"]]
        elif kind is MessageType.ERROR:
            raw = [int(kind), int(MessageType.INVOCATION), target, {}, "com.forged"]
        else:
            raw = [int(kind), target, {"mode": "kill"}]
        mine = self.hostile_feed(hostile, hostile.serializer.dumps(raw))
        if kind in (MessageType.UNSUBSCRIBE, MessageType.UNREGISTER):
            noun = "subscription" if kind is MessageType.UNSUBSCRIBE else "registration"
            assert only(mine, Error).error == f"wamp.error.no_such_{noun}", mine

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def good_sessions_stay(self) -> None:
        for agent in self.agents:
            slot = agent.slot
            assert slot.state is SessionState.ESTABLISHED, agent
            assert slot.realm_name == agent.realm
            assert set(slot.subscriptions) == set(agent.subs), agent
            assert set(slot.registrations) == set(agent.regs), agent
            assert not agent.inbox

    @invariant()
    def tables_hold_only_own_realm(self) -> None:
        for name, realm in self.router.realms.items():
            for subscription in realm.broker.subscriptions.values():
                assert all(s.realm_name == name for s in subscription.subscribers)
            for registration in realm.dealer.registrations.values():
                assert all(s.realm_name == name for s in registration.callees)
            assert all(s.realm_name == name for s in realm.sessions.values())


Isolation.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestIsolation = Isolation.TestCase
