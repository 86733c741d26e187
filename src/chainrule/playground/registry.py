"""The sessions of a running playground: one per open page, ended when the page goes away.

A page holds an event stream open for as long as it is shown; a session with no stream for
``grace`` seconds (the page was closed, or the browser went away without saying so) is closed,
and so is its training thread. A page that says goodbye (``/close``) ends its session at once.
The number of sessions is capped per origin, the pages of this server on one side and clients
that are no web page on the other, so a script cannot start threads without end, and a script
that fills its share does not keep the user's own page out.
"""

from __future__ import annotations

import secrets
import threading
import time

from .points import PlaygroundError
from .session import Session

MAX_SESSIONS = 32
STREAM_GRACE = 10.0  # seconds without an event stream before a session ends


class Registry:
    """Sessions by id, and a thread that ends the abandoned ones."""

    def __init__(
        self,
        max_sessions: int = MAX_SESSIONS,
        grace: float = STREAM_GRACE,
        data_dir: str | None = None,
    ):
        self.max_sessions, self.grace = max_sessions, grace
        # the image mode's MNIST folder (``--data-dir``), for every session
        self.data_dir = data_dir
        self.sessions: dict[str, Session] = {}
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.reaper = threading.Thread(target=self._reap, name="playground-reaper", daemon=True)
        self.reaper.start()

    def create(self, from_page: bool = False) -> Session:
        """A new session for the server's own page (``from_page``) or for another client (a
        script), unless that side has ``max_sessions`` already."""
        with self.lock:
            if sum(s.from_page == from_page for s in self.sessions.values()) >= self.max_sessions:
                who = "pages are" if from_page else "sessions of clients other than a page are"
                raise PlaygroundError(
                    f"{self.max_sessions} {who} open already (the server's limit): close one "
                    "and reload this one"
                )
            session = Session(secrets.token_urlsafe(16), from_page, self.data_dir)
            self.sessions[session.id] = session
            return session

    def get(self, session_id: str) -> Session | None:
        with self.lock:
            return self.sessions.get(session_id)

    def close(self, session_id: str) -> None:
        with self.lock:
            session = self.sessions.pop(session_id, None)
        if session is not None:
            session.close()

    def close_all(self, wait: float = 2.0) -> None:
        """End every session and the reaper; wait up to ``wait`` seconds for their threads."""
        self.stopped.set()
        with self.lock:
            sessions, self.sessions = list(self.sessions.values()), {}
        for session in sessions:
            session.close()
        deadline = time.monotonic() + wait
        for session in sessions:
            session.thread.join(max(0.0, deadline - time.monotonic()))

    def _reap(self) -> None:
        while not self.stopped.wait(min(1.0, self.grace / 2)):
            now = time.monotonic()
            with self.lock:
                abandoned = [
                    s.id
                    for s in self.sessions.values()
                    if s.attached == 0 and now - s.last_active > self.grace
                ]
            for session_id in abandoned:
                self.close(session_id)
