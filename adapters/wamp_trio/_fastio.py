"""Direct non-blocking I/O on plain socket streams (TCP and Unix, no TLS).

Two shortcuts around ``trio.SocketStream`` that keep its semantics and save a
trip through the scheduler per operation:

* ``receive_some`` reads first and waits for readability only when nothing is
  there; a read that had to wait returns without the extra scheduling round
  that ``SocketStream.receive_some`` takes after every read. Every call is
  still one schedule point, and cancellation loses no data.
* ``write_nowait`` writes what the kernel takes *now*, without awaiting: a
  router task that produced a message for another connection can put it on that
  connection's socket at once instead of waking the connection's writer task.
  The caller keeps the unwritten rest and sends it with the normal, awaiting
  path (which then also meets any error).

Both are for streams whose every other read and write goes through the caller's
own lock: they bypass ``SocketStream``'s conflict detection. ``socket_of``
returns None (and the callers keep using the stream) for TLS, non-POSIX
systems and any other stream type.
"""

from __future__ import annotations

import errno
import os

import trio

__all__ = ["DirectSender", "read_nowait", "receive_some", "socket_of", "write_nowait"]

_POSIX = os.name == "posix"


class DirectSender:
    """The send side of a transport with direct writes: the lock its writers hold
    (``_send_lock``), made on first use, since a connection whose every write was
    direct never needs one (300 bytes); ``_sending()`` tells whether a task holds
    it, without making it; ``_write_now()`` writes directly and keeps the rest in
    ``_unsent``, which the transport's writers must send first."""

    __slots__ = ("_lock", "_sock", "_unsent")

    def __init__(self, sock: trio.socket.SocketType | None) -> None:
        self._sock = sock  # direct I/O when not None: a plain socket
        self._lock: trio.Lock | None = None
        self._unsent = b""

    @property
    def direct_io(self) -> bool:
        """True when the transport reads and writes its plain socket directly
        (``try_send_many`` can write); False on TLS and other streams."""
        return self._sock is not None

    @property
    def _send_lock(self) -> trio.Lock:
        lock = self._lock
        if lock is None:
            lock = self._lock = trio.Lock()
        return lock

    def _sending(self) -> bool:
        return self._lock is not None and self._lock.locked()

    def _write_now(self, sock: trio.socket.SocketType, data: bytes) -> bool:
        """Write ``data`` without waiting: True if all of it went, else False with
        the rest in ``_unsent``."""
        written = write_nowait(sock, data)
        if written == len(data):
            return True
        self._unsent = data[written:]
        return False


def socket_of(stream: trio.abc.Stream) -> trio.socket.SocketType | None:
    """The socket under ``stream`` if direct I/O applies to it, else None."""
    if _POSIX and type(stream) is trio.SocketStream:
        return stream.socket
    return None


async def receive_some(sock: trio.socket.SocketType, max_bytes: int) -> bytes:
    """As ``trio.SocketStream.receive_some``: up to ``max_bytes`` bytes, b"" at EOF.

    ``trio.ClosedResourceError`` if the socket is (or gets) closed locally,
    ``trio.BrokenResourceError`` for a network error (reset, ...).
    """
    await trio.lowlevel.checkpoint_if_cancelled()
    data = read_nowait(sock, max_bytes)
    if data is not None:
        # Data was there at once: still let the other tasks run (the
        # checkpoint trio takes after every read), without losing the data.
        await trio.lowlevel.cancel_shielded_checkpoint()
        return data
    while True:
        # Raises ClosedResourceError if another task closes the socket.
        await trio.lowlevel.wait_readable(sock)
        data = read_nowait(sock, max_bytes)
        if data is not None:
            return data


def read_nowait(sock: trio.socket.SocketType, max_bytes: int) -> bytes | None:
    """Read up to ``max_bytes`` bytes if there are any now (b"" at EOF), else None.

    Raises as ``receive_some``. A function of its own, so that no exception
    passes through the (waiting) caller: a coroutine that catches one keeps a
    frame object (200 bytes) for as long as it lives, per connection.
    """
    fd = sock.fileno()
    if fd < 0:
        raise trio.ClosedResourceError("the socket was closed")
    try:
        return os.read(fd, max_bytes)
    except BlockingIOError:
        return None
    except OSError as exc:
        if exc.errno == errno.EBADF:
            raise trio.ClosedResourceError("the socket was closed") from None
        raise trio.BrokenResourceError(f"socket read failed: {exc}") from exc


def write_nowait(sock: trio.socket.SocketType, data: bytes) -> int:
    """Write as much of ``data`` as the socket takes without blocking; the count.

    0 when nothing could be written, including on errors: the caller sends the
    rest through the stream, which reports the error then.
    """
    fd = sock.fileno()
    if fd < 0:
        return 0
    try:
        return os.write(fd, data)
    except OSError:  # BlockingIOError, or broken: the awaiting path deals with it
        return 0
