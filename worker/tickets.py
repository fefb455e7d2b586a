"""The tickets of one call, so that a caller who goes away has its queued work dropped.

An engine call reports each ticket it waits on through a hook; the transport cancels them
all when the caller cancels, times out or disconnects. A ticket reported after that (the
request was still being validated) is cancelled as it arrives.
"""

from __future__ import annotations

import threading

from crossrank.worker.engine import Ticket


class CallTickets:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tickets: list[Ticket] = []
        self._gone = False

    def hook(self, ticket: Ticket) -> None:
        with self._lock:
            self._tickets.append(ticket)
            gone = self._gone
        if gone:
            ticket.cancel()

    def cancel_all(self) -> None:
        with self._lock:
            self._gone = True
            tickets = list(self._tickets)
        for ticket in tickets:
            ticket.cancel()
