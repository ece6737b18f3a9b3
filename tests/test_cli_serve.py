"""``hwkit serve`` as a user runs it: prints its URL, answers, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from hwkit.cli import cli


def test_serve_prints_its_url_answers_and_stops_on_ctrl_c(tmp_path: Path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "hwkit", "serve", "--port", "0"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/"), url
        with urllib.request.urlopen(url + "api/models", timeout=30) as response:
            assert json.load(response)[0]["id"] == "bundled"
        request = urllib.request.Request(url + "api/write", data=b'{"text": "hi", "seed": 1}', method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            assert b"event: done" in response.read()
    finally:
        proc.send_signal(signal.SIGINT)
        start = time.monotonic()
        rc = proc.wait(30)
    stderr = proc.stderr.read()
    assert rc == 0 and time.monotonic() - start < 30, stderr
    assert "Traceback" not in stderr and "Ctrl-C stops it" in stderr


def test_ctrl_c_stops_running_and_waiting_writings_at_once(tmp_path):
    """Ctrl-C while three long writings stream: they end at their next points, the server soon after."""
    import threading

    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "hwkit", "serve", "--port", "0"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    url = proc.stdout.readline().strip()
    text = "\n".join(["a long line of text for the network to write out slowly"] * 8)
    ends = []

    def write() -> None:
        body = json.dumps({"text": text, "seed": 1}).encode()
        request = urllib.request.Request(url + "api/write", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                ends.append(response.read().decode().rstrip().rsplit("event: ", 1)[-1][:5])
        except OSError as exc:
            ends.append(type(exc).__name__)

    threads = [threading.Thread(target=write) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(3)  # the model is loaded and the first writing is streaming
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    rc = proc.wait(60)
    stopped_in = time.monotonic() - start
    for t in threads:
        t.join(30)
    assert rc == 0 and stopped_in < 10, (stopped_in, proc.stderr.read())
    assert "done" not in ends  # none was written to the end after Ctrl-C


def test_serve_refuses_a_bad_model_before_starting(tmp_path):
    result = CliRunner().invoke(cli, ["serve", "--model", str(tmp_path / "nope.pt")])
    assert result.exit_code == 1 and result.stderr.startswith("error: ") and "nope.pt" in result.stderr


def test_serve_warns_when_it_listens_beyond_this_machine(monkeypatch):
    import uvicorn

    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: None)
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--port", "0"])
    assert result.exit_code == 0 and "anyone who can reach this machine" in result.stderr


def test_serve_on_a_port_in_use_is_one_line_exit_1(monkeypatch):
    import socket

    import uvicorn

    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: pytest.fail("served on a taken port"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["serve", "--port", str(port)])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}: ") and "--port" in result.stderr
    assert len(result.stderr.splitlines()) == 1
