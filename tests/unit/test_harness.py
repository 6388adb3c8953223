"""harness/: the helpers the tests, reliability/ and bench/ share."""

from __future__ import annotations

import http.server
import itertools
import threading
import time

import pytest

from harness.envfile import read_env
from harness.net import free_port
from harness.poll import until, wait_for, within
from harness.proc import CommandFailed, docker_json, run


def test_until_returns_the_first_truthy_value():
    calls = itertools.count(1)
    assert until("the third call", lambda: (n := next(calls)) >= 3 and n, timeout=5, interval=0.01) == 3


def test_until_retries_through_exceptions_and_names_the_last_one():
    with pytest.raises(TimeoutError, match=r"never: not within 0.2 s .*ZeroDivisionError"):
        until("never", lambda: 1 / 0, timeout=0.2, interval=0.05)


def test_until_stops_as_soon_as_give_up_says_so():
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="dead container"):
        until("dead container", lambda: False, timeout=30, interval=0.05, give_up=lambda: True)
    assert time.monotonic() - started < 5


def test_within_is_none_when_the_time_runs_out():
    assert within("nothing", lambda: 0, timeout=0.1, interval=0.02) is None
    assert within("something", lambda: "yes", timeout=1) == "yes"


@pytest.fixture
def server():
    hits = itertools.count()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if next(hits) >= 2 else 503)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}/"
    httpd.shutdown()


def test_wait_for_polls_until_the_status(server):
    assert wait_for(server, 200, timeout=10, interval=0.01) < 10


def test_wait_for_reports_the_last_answer(server):
    with pytest.raises(TimeoutError, match=r"answering 418.*200"):
        wait_for(server, 418, timeout=0.3, interval=0.05)


def test_read_env_skips_comments_and_blank_lines_and_a_missing_file(tmp_path):
    path = tmp_path / "x.env"
    path.write_text("# comment\n\nA=1\n B = two=2 \nnot a pair\n")
    assert read_env(path) == {"A": "1", "B": "two=2"}
    assert read_env(tmp_path / "absent.env") == {}


def test_run_shows_the_output_of_a_failed_command():
    with pytest.raises(CommandFailed, match=r"exited 3[\s\S]*--- stderr\nboom"):
        run("sh", "-c", "echo boom >&2; exit 3")
    assert run("sh", "-c", "exit 3", check=False).returncode == 3


def test_docker_json_parses_the_commands_output(tmp_path, monkeypatch):
    fake = tmp_path / "docker"
    fake.write_text('#!/bin/sh\necho "[{\\"args\\": \\"$*\\"}]"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    assert docker_json("inspect", "x") == [{"args": "inspect x"}]
