"""wamp_trio: trio adapters binding wamp_core to WebSocket, RawSocket and HTTP long-poll.

Client::

    async with wamp_trio.connect("ws://127.0.0.1:8080/ws", realm="realm1") as session:
        print(await session.call("com.example.add", 2, 3))

Router: ``wampcore router`` (see docs/router.md), or ``RouterHost`` and
``serve_router`` to embed one.
"""

from ._auth import (
    ClientAuth,
    CryptosignAuth,
    ScramAuth,
    TicketAuth,
    WampCraAuth,
    cryptosign_auth,
    scram_auth,
    ticket_auth,
    wampcra_auth,
)
from ._client import (
    FATAL_ABORT_REASONS,
    JOIN_TIMEOUT,
    RUNTIME_ERROR,
    ApplicationError,
    CallResult,
    CancelMode,
    Chunks,
    Event,
    InvocationDetails,
    JoinError,
    ProgressiveCall,
    ReconnectPolicy,
    Registration,
    Session,
    SessionEnded,
    StreamingCall,
    Subscription,
    TransportFactory,
    TransportLost,
    WampError,
    connect,
    open_session,
)
from ._config import (
    ConfigError,
    Limits,
    RealmConfig,
    RouterConfig,
    TcpListener,
    TlsConfig,
    UnixListener,
    load_config,
    parse_config,
    parse_limits,
)
from ._connect import open_transport
from ._host import Endpoint, HostedConnection, RouterHost, SlowConsumerPolicy, serve_router
from ._listen import HttpEndpoint, serve_tcp, serve_unix
from ._longpoll import LongPollServer, connect_longpoll
from ._rawsocket import RawSocketTransport, accept_rawsocket, connect_rawsocket
from ._transport import MessageTransport, TransportClosed, memory_transport_pair
from ._websocket import (
    WebSocketHandshakeError,
    WebSocketTransport,
    accept_websocket,
    connect_websocket,
)

__all__ = [
    "FATAL_ABORT_REASONS",
    "JOIN_TIMEOUT",
    "RUNTIME_ERROR",
    "ApplicationError",
    "CallResult",
    "CancelMode",
    "Chunks",
    "ClientAuth",
    "ConfigError",
    "CryptosignAuth",
    "Endpoint",
    "Event",
    "HostedConnection",
    "HttpEndpoint",
    "InvocationDetails",
    "JoinError",
    "Limits",
    "LongPollServer",
    "MessageTransport",
    "ProgressiveCall",
    "RawSocketTransport",
    "RealmConfig",
    "ReconnectPolicy",
    "Registration",
    "RouterConfig",
    "RouterHost",
    "ScramAuth",
    "Session",
    "SessionEnded",
    "SlowConsumerPolicy",
    "StreamingCall",
    "Subscription",
    "TcpListener",
    "TicketAuth",
    "TlsConfig",
    "TransportClosed",
    "TransportFactory",
    "TransportLost",
    "UnixListener",
    "WampCraAuth",
    "WampError",
    "WebSocketHandshakeError",
    "WebSocketTransport",
    "accept_rawsocket",
    "accept_websocket",
    "connect",
    "connect_longpoll",
    "connect_rawsocket",
    "connect_websocket",
    "cryptosign_auth",
    "load_config",
    "memory_transport_pair",
    "open_session",
    "open_transport",
    "parse_config",
    "parse_limits",
    "scram_auth",
    "serve_router",
    "serve_tcp",
    "serve_unix",
    "ticket_auth",
    "wampcra_auth",
]
