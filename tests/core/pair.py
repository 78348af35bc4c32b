"""In-memory harness: client sessions and a router wired together without sockets.

Like h11's ConnectionPair: ``Net`` moves bytes between ``ClientSession``s and a
``Router`` until nothing moves, and collects each client's events.
"""

from __future__ import annotations

from typing import Any

from wamp_core import ClientSession, Router, RouterSession, SessionEvent


class Peer:
    """One client session plus its router-side slot and the events it received."""

    def __init__(self, net: Net, serializer: str, **kwargs: Any) -> None:
        self.net = net
        self.client = ClientSession(serializer, **kwargs)
        self.slot: RouterSession = net.router.attach(self.client.serializer)
        self.events: list[SessionEvent] = []
        self.closed = False  # the router asked to close the transport

    def take(self) -> list[SessionEvent]:
        """Events received since the last take()."""
        events, self.events = self.events, []
        return events

    def last(self) -> SessionEvent:
        """The single event received since the last take()."""
        events = self.take()
        assert len(events) == 1, events
        return events[0]


class Net:
    """A router and the peers attached to it."""

    def __init__(self, router: Router | None = None) -> None:
        self.router = router if router is not None else Router(["realm1"])
        self.peers: dict[RouterSession, Peer] = {}

    def peer(self, serializer: str = "json", **kwargs: Any) -> Peer:
        peer = Peer(self, serializer, **kwargs)
        self.peers[peer.slot] = peer
        return peer

    def joined(self, serializer: str = "json", realm: str = "realm1", **kwargs: Any) -> Peer:
        """A peer that has joined ``realm``."""
        peer = self.peer(serializer, **kwargs)
        peer.client.join(realm)
        self.pump()
        (event,) = peer.take()
        assert type(event).__name__ == "SessionJoined", event
        return peer

    def pump(self, limit: int = 100) -> None:
        """Move data both ways until everything is quiet."""
        for _ in range(limit):
            moved = False
            for slot, peer in list(self.peers.items()):
                for data in peer.client.data_to_send():
                    moved = True
                    if not peer.closed:
                        self.router.receive_data(slot, data)
            for delivery in self.router.data_to_send():
                moved = True
                peer = self.peers[delivery.session]
                if delivery.data is None:
                    peer.closed = True
                else:
                    peer.events.extend(peer.client.receive_data(delivery.data))
            if not moved:
                return
        raise AssertionError("traffic did not settle")
