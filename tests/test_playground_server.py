"""The playground's server over HTTP (no browser): routes, refusals, event streams, sessions
ending, exports, and the command's start and Ctrl-C."""

import fnmatch
import http.client
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

from chainrule.playground.registry import Registry
from chainrule.playground.server import PlaygroundServer, static_files


@pytest.fixture
def server():
    srv = PlaygroundServer("127.0.0.1", 0, Registry(max_sessions=3, grace=1.0))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.stop()


def call(server, method, path, body=None, headers=None, raw=None):
    """(status, parsed JSON or bytes, headers) of one request."""
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=10)
    sent = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"Content-Type": "application/json", **(headers or {})}
    connection.request(method, path, body=sent, headers=headers)
    response = connection.getresponse()
    data = response.read()
    kind = response.getheader("Content-Type", "")
    connection.close()
    return response.status, json.loads(data) if "json" in kind else data, response


def new_session(server, setup=None) -> str:
    status, answer, _ = call(server, "POST", "/api/sessions")
    assert status == 200
    if setup is not None:
        status, result, _ = call(server, "POST", f"/api/sessions/{answer['id']}/setup", setup)
        assert status == 200, result
    return answer["id"]


class Stream:
    """A session's event stream, read message by message."""

    def __init__(self, server, session_id):
        host, port = server.server_address[:2]
        self.connection = http.client.HTTPConnection(host, port, timeout=10)
        self.connection.request("GET", f"/api/sessions/{session_id}/events")
        self.response = self.connection.getresponse()
        assert self.response.getheader("Content-Type") == "text/event-stream"

    def next(self, kind: str) -> dict:
        event = None
        while True:
            line = self.response.fp.readline().decode()
            if line.startswith("event: "):
                event = line[7:].strip()
            elif line.startswith("data: ") and event == kind:
                return json.loads(line[6:])

    def close(self):
        self.response.close()
        self.connection.close()


def test_the_page_and_only_its_files_are_served(server):
    status, page, response = call(server, "GET", "/")
    assert status == 200 and b'<script type="module" src="/static/js/main.js">' in page
    assert "default-src 'self'" in response.getheader("Content-Security-Policy")
    for name in ("style.css", "js/main.js", "js/state.js", "js/draw.js", "js/network.js"):
        assert call(server, "GET", f"/static/{name}")[0] == 200, name
    for path in ("/static/../server.py", "/static/js/../../server.py", "/etc/passwd", "/api/x"):
        assert call(server, "GET", path)[0] == 404, path


def test_every_file_of_the_page_ships_in_the_package():
    """pyproject.toml's package data must name every file the server serves, or a `pip
    install` would lack it."""
    root = Path(__file__).resolve().parents[1]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["chainrule.playground"]
    static = root / "src/chainrule/playground/static"
    files = [p.relative_to(static.parent).as_posix() for p in static.rglob("*") if p.is_file()]
    assert len(files) >= 8
    for name in files:
        assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns), name
    assert sorted(static_files()) == sorted(f.removeprefix("static/") for f in files)


def test_a_session_gets_the_menus_and_its_setup_checked(server):
    status, answer, _ = call(server, "POST", "/api/sessions")
    choices = answer["choices"]
    assert status == 200 and choices["limits"] == {
        "hidden_layers": 6,
        "neurons": 8,
        "added_points": 500,
        "classes": 6,
    }
    assert set(choices["optimizers"]) == {
        "sgd",
        "gd",
        "adam",
        "adamw",
        "nadam",
        "adamax",
        "rmsprop",
        "adagrad",
        "adadelta",
    }
    base = f"/api/sessions/{answer['id']}"
    status, result, _ = call(server, "POST", f"{base}/setup", {"dataset": "spirals"})
    assert status == 200 and result["setup"]["noise"] == 0.2
    status, result, _ = call(server, "POST", f"{base}/setup", {"hidden": [4, 50]})
    assert status == 400 and result["error"] == "hidden layer 2: 1 to 8 neurons, got 50"


@pytest.mark.parametrize(
    "path, body, headers, status, message",
    [
        ("setup", None, {}, 400, "not valid JSON"),
        ("setup", b"{}", {"Content-Type": "text/plain"}, 415, "send JSON"),
        ("setup", b"[" * 40 + b"]" * 40, {}, 400, "nested"),
        ("setup", b"{" + b" " * (70 << 10) + b"}", {}, 413, "at most 64 KiB"),
        ("setup", b'{"lr": NaN}', {}, 400, "not valid JSON"),
        ("setup", b"null", {}, 400, "send a JSON object ({...}), not 'null'"),
        ("control", b"null", {}, 400, "send a JSON object"),
        ("upload", b"null", {}, 400, "send a JSON object"),
        ("control", b"[1]", {}, 400, "not '[1]'"),
        ("upload", b'"text"', {}, 400, "not '\"text\"'"),
        ("control", b'{"action": "fly"}', {}, 400, "action must be one of"),
        ("upload", b'{"name": "a.csv"}', {}, 400, "upload: send"),
        ("upload", b'{"name": "a.csv", "csv": "x,y\\nq,1\\n"}', {}, 400, "a.csv, line 2"),
        ("nothing", b"{}", {}, 404, "nothing at"),
    ],
)
def test_bad_requests_are_refused_and_the_server_goes_on(
    server, path, body, headers, status, message
):
    session = new_session(server, {})
    got, answer, _ = call(
        server,
        "POST",
        f"/api/sessions/{session}/{path}",
        raw=body if body is not None else b"{oops",
        headers=headers,
    )
    assert got == status and message in answer["error"]
    assert call(server, "GET", "/")[0] == 200
    assert call(server, "POST", f"/api/sessions/{session}/setup", {"dataset": "xor"})[0] == 200


def test_foreign_hosts_and_unknown_sessions_are_refused(server):
    status, answer, _ = call(server, "GET", "/", headers={"Host": "evil.example:80"})
    assert status == 403 and "only to its own address" in answer["error"]
    status, answer, _ = call(server, "POST", "/api/sessions/nosuchsession/setup", {})
    assert status == 404 and "reload" in answer["error"]
    session = new_session(server)
    status, answer, _ = call(server, "POST", f"/api/sessions/{session}/control", {"action": "play"})
    assert status == 400 and "no setup yet" in answer["error"]


def own_origin(server) -> dict:
    """The headers a browser sends with a request of the server's own page."""
    return {"Origin": server.url.rstrip("/"), "Sec-Fetch-Site": "same-origin"}


def test_sessions_are_capped_per_origin(server):
    """Clients that are no page (no Origin) fill their own share: the page still gets in."""
    for _ in range(3):
        new_session(server)
    status, answer, _ = call(server, "POST", "/api/sessions")
    assert status == 503 and answer["error"].startswith("3 sessions of clients other than a page")
    page = own_origin(server)
    for _ in range(3):
        assert call(server, "POST", "/api/sessions", headers=page)[0] == 200
    status, answer, _ = call(server, "POST", "/api/sessions", headers=page)
    assert status == 503 and "3 pages are open already" in answer["error"]


FOREIGN = [
    {"Origin": "http://evil.example"},
    {"Origin": "null"},  # a sandboxed frame, a file:// page
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},  # another port of this machine
    {"Origin": "http://127.0.0.1:1", "Sec-Fetch-Site": "same-site"},
]


@pytest.mark.parametrize("headers", FOREIGN, ids=lambda h: "-".join(h.values()))
def test_pages_of_other_origins_change_nothing(server, headers):
    """A "simple" cross-origin POST (text/plain, no preflight) of another site's page: refused,
    however many, and the server's own page still gets a session and keeps it."""
    mine = call(server, "POST", "/api/sessions", headers=own_origin(server))[1]["id"]
    simple = {"Content-Type": "text/plain", **headers}
    for _ in range(5):
        status, answer, _ = call(server, "POST", "/api/sessions", raw=b"", headers=simple)
        assert status == 403 and "only this server's own page" in answer["error"]
    for route in ("setup", "control", "upload", "close"):
        status, _, _ = call(
            server, "POST", f"/api/sessions/{mine}/{route}", raw=b"", headers=simple
        )
        assert status == 403, route
    assert server.registry.get(mine) is not None and len(server.registry.sessions) == 1
    assert call(server, "POST", "/api/sessions", headers=own_origin(server))[0] == 200


def test_the_stream_sends_data_then_frames_at_most_twenty_a_second(server):
    session = new_session(server, {"dataset": "xor", "n": 100, "batch": 100, "hidden": [2]})
    stream = Stream(server, session)
    data = stream.next("data")
    assert data["task"] == "classification" and len(data["train"]) == 80
    assert stream.next("frame")["epoch"] == 0
    call(server, "POST", f"/api/sessions/{session}/control", {"action": "play"})
    first = stream.next("frame")
    started, count = time.monotonic(), 0
    while time.monotonic() - started < 1.5:
        last = stream.next("frame")
        count += 1
    seconds = time.monotonic() - started
    assert last["playing"] and count / seconds <= 22
    # training runs at its own pace: many epochs between two frames
    assert last["epoch"] - first["epoch"] > 2 * count
    call(server, "POST", f"/api/sessions/{session}/control", {"action": "pause"})
    # a frame already on its way may still say "playing"; the one the pause sends does not
    for _ in range(3):
        frame = stream.next("frame")
        if not frame["playing"]:
            break
    assert not frame["playing"]
    stream.close()


def test_a_session_ends_when_its_page_goes_away(server):
    session_id = new_session(server, {"dataset": "circles"})
    session = server.registry.get(session_id)
    stream = Stream(server, session_id)
    stream.next("frame")
    call(server, "POST", f"/api/sessions/{session_id}/control", {"action": "play"})
    stream.close()
    deadline = time.monotonic() + 8
    while server.registry.get(session_id) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.registry.get(session_id) is None
    session.thread.join(5)
    assert not session.thread.is_alive()
    # a page that says goodbye ends its session at once
    other = new_session(server, {})
    assert call(server, "POST", f"/api/sessions/{other}/close", raw=b"", headers={})[0] == 200
    assert server.registry.get(other) is None


def test_exports_of_a_trained_run(server):
    session = new_session(server, {"dataset": "moons", "hidden": [3]})
    status, answer, _ = call(server, "GET", f"/api/sessions/{session}/export/run.zip")
    assert status == 409 and "train at least one epoch" in answer["error"]
    call(server, "POST", f"/api/sessions/{session}/control", {"action": "step"})
    deadline = time.monotonic() + 5
    while server.registry.get(session).trainer.epoch == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    status, body, response = call(server, "GET", f"/api/sessions/{session}/export/run.zip")
    assert status == 200 and response.getheader("Content-Type") == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(body)).namelist()
    assert {f"playground-run/{n}" for n in ("model.safetensors", "config.json", "data.csv")} <= set(
        names
    )
    status, script, _ = call(server, "GET", f"/api/sessions/{session}/export/train.py")
    assert status == 200 and b"EPOCHS = 1" in script and b"cr.data.moons(n=400" in script


def test_an_uploaded_file_is_a_data_set(server):
    session = new_session(server, {})
    rows = "a,b,kind\n" + "".join(f"{i % 7},{i % 5},{'xy'[i % 2]}\n" for i in range(40))
    status, answer, _ = call(
        server, "POST", f"/api/sessions/{session}/upload", {"name": "mine.csv", "csv": rows}
    )
    assert status == 200 and answer["classes"] == ["x", "y"] and answer["rows"] == 40
    status, answer, _ = call(
        server, "POST", f"/api/sessions/{session}/setup", {"dataset": "upload"}
    )
    assert status == 200 and answer["setup"]["output"] == "softmax"


def test_the_command_prints_its_address_opens_a_browser_and_stops_on_ctrl_c(tmp_path):
    opened = tmp_path / "opened.txt"
    recorder = tmp_path / "browser.py"
    recorder.write_text(f"import sys\nopen({str(opened)!r}, 'w').write(sys.argv[1])\n")
    env = {**os.environ, "BROWSER": f"{sys.executable} {recorder} %s"}
    process = subprocess.Popen(
        [sys.executable, "-m", "chainrule", "playground", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("chainrule playground: http://127.0.0.1:")
        url = line.split()[2]
        host, port = url.removeprefix("http://").rstrip("/").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.request("GET", "/")
        assert connection.getresponse().status == 200
        deadline = time.monotonic() + 10
        while not opened.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert opened.read_text() == url
        # a page training at full speed does not hold the server up
        headers = {"Content-Type": "application/json"}
        connection.request("POST", "/api/sessions", body=b"{}", headers=headers)
        session_id = json.loads(connection.getresponse().read())["id"]
        for route, body in (("setup", {"dataset": "spirals"}), ("control", {"action": "play"})):
            path = f"/api/sessions/{session_id}/{route}"
            connection.request("POST", path, body=json.dumps(body).encode(), headers=headers)
            assert connection.getresponse().status == 200, route
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        assert "stopped" in process.stderr.read()
    finally:
        process.kill()


def test_a_port_that_cannot_be_used_is_one_line(capsys):
    from chainrule.cli import main

    assert main(["playground", "--port", "70000", "--no-browser"]) == 2
    assert "ports go up to 65535" in capsys.readouterr().err
