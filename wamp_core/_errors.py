"""Exceptions raised by the core.

The split follows h11: a ``LocalProtocolError`` means *you* asked the core to do
something the protocol forbids (the state is left untouched); a
``RemoteProtocolError`` means the *peer* broke the protocol (the core has already
queued the ABORT that the spec requires and moved to an error state).
"""

from __future__ import annotations

__all__ = ["LocalProtocolError", "ProcedureError", "ProtocolError", "RemoteProtocolError"]

PROTOCOL_VIOLATION = "wamp.error.protocol_violation"


class ProtocolError(Exception):
    """Base class of every error the core raises for a protocol problem.

    ``reason`` is the WAMP URI that describes the problem on the wire
    (``wamp.error.protocol_violation`` unless stated otherwise) and ``message``
    the human-readable text that goes into ``ABORT.Details.message``.
    """

    def __init__(self, message: str, reason: str = PROTOCOL_VIOLATION) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, reason={self.reason!r})"


class LocalProtocolError(ProtocolError):
    """The caller of the core misused its API; nothing was changed or sent."""


class RemoteProtocolError(ProtocolError):
    """The peer violated the protocol (malformed bytes, illegal message or order)."""


class ProcedureError(Exception):
    """Raised by a procedure the router provides itself: the caller gets
    ERROR ``error`` with these ``args`` and ``kwargs`` (an application-level
    answer, not a protocol error)."""

    def __init__(self, error: str, *args: object, **kwargs: object) -> None:
        super().__init__(error, *args)
        self.error = error
        self.error_args = list(args)
        self.error_kwargs = dict(kwargs)
