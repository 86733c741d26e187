"""The playground's web server: Python's standard library (``http.server``, a thread a request).

Routes (every answer to ``/api`` is JSON, ``{"error": "..."}`` with status 4xx when refused):

* ``GET /``, ``GET /images`` (the image mode) and ``GET /static/...``: the page (files shipped
  in the package; nothing else is served, and the page may load nothing from elsewhere: its
  Content-Security-Policy says so);
* ``POST /api/sessions``: a new session for a page, with the menus and limits it shows;
* ``POST /api/sessions/ID/setup`` (a setup), ``/control`` (``{"action": "play"}``...),
  ``/upload`` (``{"name": ..., "csv": ...}``, or the image mode's ``{"images": [...]}``),
  ``/inside`` (the image mode: ``{"picture": ..., "neuron": ...}``, answered with what every
  layer makes of the picture, :mod:`.inside_view`), ``/close`` (the page is going away);
* ``GET /api/sessions/ID/events``: the session's messages as Server-Sent Events (``data``,
  ``frame``), at most 20 frames a second, a comment every second when nothing changes;
* ``GET /api/sessions/ID/export/run.zip`` and ``/export/train.py``: the trained run.

Requests are checked before they are read: the ``Host`` header must name this machine (a
rebound DNS name is refused); every POST must come from the server's own page, as the browser
says it in ``Origin`` and ``Sec-Fetch-Site`` (a page of another site, another port included,
can send a "simple" POST without asking first; a client that is no browser sends neither
header); bodies have a size cap and must be JSON objects. Sessions are capped per origin
(:class:`.registry.Registry`), so clients other than the page cannot keep the page out.
"""

from __future__ import annotations

import ipaddress
import json
import re
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import urlsplit

from ..files import DataError
from ..io import parse_json
from ..runs.config import RunError
from .export import run_folder_zip
from .image_export import write_image_run_folder
from .image_run import ImageTrainer
from .image_script import image_script
from .images import image_choices
from .points import PlaygroundError
from .registry import Registry
from .script import python_script
from .session import FRAME_INTERVAL
from .settings import choices

MAX_BODY = 64 << 10
MAX_UPLOAD_BODY = 2 << 20  # a 512 KiB file, escaped as JSON
KEEPALIVE = 1.0  # seconds between comments on a quiet stream (how soon a gone page is noticed)
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}
POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'"
)
SESSION_ROUTE = re.compile(r"/api/sessions/([A-Za-z0-9_-]{1,64})/([a-z]+)(?:/([a-z.]+))?")


def static_files() -> dict:
    """The page's files (path under ``/static/`` -> (bytes, content type)), read once."""
    root = resources.files(__package__) / "static"
    found, folders = {}, [(root, "")]
    while folders:
        folder, prefix = folders.pop()
        for entry in folder.iterdir():
            name = prefix + entry.name
            if entry.is_dir():
                folders.append((entry, name + "/"))
            elif "." + name.rsplit(".", 1)[-1] in CONTENT_TYPES:
                found[name] = (entry.read_bytes(), CONTENT_TYPES["." + name.rsplit(".", 1)[-1]])
    return found


class Refused(Exception):
    """A request answered with ``status`` and ``{"error": message}``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class PlaygroundServer(ThreadingHTTPServer):
    """A threading HTTP server holding the sessions and the page's files."""

    daemon_threads = True

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        registry: Registry | None = None,
        data_dir: str | None = None,
    ):
        """``data_dir``: where the image mode finds MNIST (a given ``registry`` has its own)."""
        super().__init__((host, port), Handler)
        self.registry = registry or Registry(data_dir=data_dir)
        self.files = static_files()
        self.host_name = host

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"http://{f'[{shown}]' if ':' in shown else shown}:{port}/"

    def handle_error(self, request, client_address) -> None:
        """A page that went away mid-answer is normal (a reload, a closed tab): say nothing.
        Anything else is a bug, printed as the standard library prints it."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)

    def stop(self) -> None:
        """End every session, then stop serving (from another thread than serve_forever's)."""
        self.registry.close_all()
        self.shutdown()
        self.server_close()


class Handler(BaseHTTPRequestHandler):
    server_version = "chainrule-playground"
    server: PlaygroundServer

    def log_message(self, format, *args):  # noqa: A002 - the standard library's name
        """Quiet: the page shows what goes wrong; a refused request is answered, not logged."""

    # -- answers -------------------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str, extra: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", POLICY)
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, value: dict) -> None:
        self._send(status, json.dumps(value).encode(), "application/json")

    def _refuse(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    # -- requests ------------------------------------------------------------------------------

    def do_GET(self):  # noqa: N802 - http.server's name
        if not self._host_is_ours():
            return
        path = urlsplit(self.path).path
        if path in ("/", "/index.html", "/images"):
            body, kind = self.server.files["images.html" if path == "/images" else "index.html"]
            return self._send(200, body, kind)
        if path.startswith("/static/") and path[len("/static/") :] in self.server.files:
            body, kind = self.server.files[path[len("/static/") :]]
            return self._send(200, body, kind)
        route = SESSION_ROUTE.fullmatch(path)
        if route is None:
            return self._refuse(404, f"nothing at {path[:80]}")
        try:
            session = self._session(route.group(1))
        except Refused as exc:
            return self._refuse(exc.status, str(exc))
        what, detail = route.group(2), route.group(3)
        if what == "events" and detail is None:
            return self._stream(session)
        if what == "export" and detail in ("run.zip", "train.py"):
            return self._export(session, detail)
        return self._refuse(404, f"nothing at {path[:80]}")

    def do_POST(self):  # noqa: N802
        if not self._host_is_ours():
            return None
        try:
            from_page = self._from_page()
            return self._json(200, self._post(urlsplit(self.path).path, from_page))
        except Refused as exc:
            return self._refuse(exc.status, str(exc))
        except (PlaygroundError, DataError, RunError) as exc:
            return self._refuse(400, str(exc))

    def _post(self, path: str, from_page: bool) -> dict:
        """The answer to a POST to ``path`` (raising :class:`Refused` or a bad-input error)."""
        if path == "/api/sessions":
            self._body(MAX_BODY)
            try:
                session = self.server.registry.create(from_page)
            except PlaygroundError as exc:
                raise Refused(503, str(exc)) from None
            images = image_choices(self.server.registry.data_dir)
            return {"id": session.id, "choices": choices() | {"images": images}}
        route = SESSION_ROUTE.fullmatch(path)
        if route is None or route.group(3) is not None:
            raise Refused(404, f"nothing at {path[:80]}")
        what = route.group(2)
        if what == "close":  # navigator.sendBeacon: any content type, body unread
            self.server.registry.close(route.group(1))
            return {"closed": True}
        if what not in ("setup", "control", "upload", "inside"):
            raise Refused(404, f"nothing at {path[:80]}")
        with self._session(route.group(1)).attach() as session:
            large = what in ("upload", "inside")
            return self._change(session, what, self._body(MAX_UPLOAD_BODY if large else MAX_BODY))

    @staticmethod
    def _change(session, what: str, values: dict) -> dict:
        """A new setup, a control or an uploaded file for ``session``; the answer."""
        if what == "setup":
            return {"setup": session.configure(values).to_dict()}
        if what == "control":
            session.control(values.get("action"))
            return {"ok": True}
        if what == "inside":
            return session.inside(values)
        if "images" in values:
            return session.upload_images(values["images"])
        if not isinstance(values.get("csv"), str):
            raise PlaygroundError('upload: send {"name": FILE, "csv": its text}')
        return session.upload_file(str(values.get("name")), values["csv"])

    def _from_page(self) -> bool:
        """Whether a state-changing request comes from this server's own page (True) or from a
        client that is no browser (False: it sends neither header). A page of any other origin,
        a port of this machine included, is refused: a browser sends "simple" cross-origin
        POSTs without asking first, so the answer being unreadable to that page is not enough."""
        site = self.headers.get("Sec-Fetch-Site")
        origin = self.headers.get("Origin")
        ours = "http://" + self.headers.get("Host", "").lower()
        if site is not None and site != "same-origin":
            raise Refused(403, f"only this server's own page may do this, not a {site[:20]} page")
        if origin is not None and origin.lower() != ours:
            raise Refused(403, f"only this server's own page may do this, not {origin[:80]!r}")
        return origin is not None

    def _host_is_ours(self) -> bool:
        """Only requests addressed to this machine (an IP address, localhost or --host): a
        name that merely resolves here (DNS rebinding) is refused."""
        host = self.headers.get("Host", "")
        name = urlsplit("//" + host).hostname or ""
        try:
            ipaddress.ip_address(name)
            ours = True
        except ValueError:
            ours = name in ("localhost", self.server.host_name.lower())
        if not ours:
            self._refuse(403, f"this server answers only to its own address, not {host[:80]!r}")
        return ours

    def _session(self, session_id: str):
        """The session of that id, marked active; raises :class:`Refused` if there is none."""
        session = self.server.registry.get(session_id)
        if session is None:
            raise Refused(404, "this page's session has ended (the server restarted?): reload")
        session.touch()
        return session

    def _body(self, limit: int) -> dict:
        """The request's body, a JSON object (``{}`` when empty); raises :class:`Refused`."""
        kind = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 <= length <= limit:
            raise Refused(413, f"the request body must be at most {limit >> 10} KiB")
        if length and kind != "application/json":
            raise Refused(415, "send JSON (Content-Type: application/json)")
        text = self.rfile.read(length) if length else b"{}"
        try:
            values = parse_json(text, "the request")
        except DataError as exc:
            raise Refused(400, str(exc)) from None
        if not isinstance(values, dict):
            shown = text[:20].decode(errors="replace")
            raise Refused(400, f"the request: send a JSON object ({{...}}), not {shown!r}")
        return values

    def _export(self, session, what: str) -> None:
        upload = _upload_name(session)
        try:
            body, kind, name = session.with_trainer(lambda t: exported(t, what, upload))
        except (PlaygroundError, DataError, RunError) as exc:
            return self._refuse(409, str(exc))
        self._send(200, body, kind, {"Content-Disposition": f'attachment; filename="{name}"'})

    def _stream(self, session) -> None:
        """Send the session's messages as they change, until the page or the session goes."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.close_connection = True
        try:
            with session.attach():
                self._send_events(session)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            pass  # the page went away

    def _send_events(self, session) -> None:
        """The stream itself: data and frames as they change, a comment each quiet second."""
        sent_data = sent_frame = 0
        last_frame = 0.0
        while not session.closed:
            seen = (sent_data, sent_frame)
            with session.changed:
                session.changed.wait_for(
                    lambda seen=seen: (
                        session.closed or (session.data_seq, session.frame_seq) != seen
                    ),
                    timeout=KEEPALIVE,
                )
                data, data_seq = session.data_text, session.data_seq
                frame, frame_seq = session.frame_text, session.frame_seq
            chunks = []
            if data_seq != sent_data and data is not None:
                chunks.append(f"event: data\ndata: {data}\n\n")
                sent_data = data_seq
            if frame_seq != sent_frame and frame is not None:
                wait = FRAME_INTERVAL - (time.monotonic() - last_frame)
                if wait > 0:  # at most 20 frames a second; the newest one goes
                    time.sleep(wait)
                    with session.changed:
                        frame, frame_seq = session.frame_text, session.frame_seq
                chunks.append(f"event: frame\ndata: {frame}\n\n")
                sent_frame, last_frame = frame_seq, time.monotonic()
            self.wfile.write(("".join(chunks) or ": still here\n\n").encode())
            self.wfile.flush()


def exported(trainer, what: str, upload_name: str | None) -> tuple[bytes, str, str]:
    """The export ``what`` (``run.zip`` or ``train.py``) of a run, in the points mode or the
    image mode: (bytes, content type, file name)."""
    images = isinstance(trainer, ImageTrainer)
    if what == "run.zip":
        write = write_image_run_folder if images else None
        body = run_folder_zip(trainer, upload_name, write)
        return body, "application/zip", "chainrule-playground.zip"
    script = image_script(trainer) if images else python_script(trainer, upload_name)
    return script.encode(), "text/x-python; charset=utf-8", "train.py"


def _upload_name(session) -> str | None:
    return session.upload.name if session.upload is not None else None
