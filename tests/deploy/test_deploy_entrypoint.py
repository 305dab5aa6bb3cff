"""The image's entrypoint and HEALTHCHECK command, run for real on loopback."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.artifacts import (
    ENTRYPOINT,
    dockerfile_stages,
    split_args,
)


def test_entrypoint_prepares_multiproc_dir_and_execs(tmp_path: Path) -> None:
    multiproc = tmp_path / "a" / "prometheus-multiproc"
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc)}
    created = subprocess.run(
        ["sh", str(ENTRYPOINT), "sh", "-c", 'test -d "$PROMETHEUS_MULTIPROC_DIR" && exit 7'],
        env=env,
        timeout=30,
    )
    assert created.returncode == 7, "the command must run (exec) with the directory created"

    (multiproc / "counter_123.db").write_bytes(b"stale")
    (multiproc / "gauge_livesum_9.db").write_bytes(b"stale")
    (multiproc / "keep.txt").write_text("not ours")
    result = subprocess.run(
        ["sh", str(ENTRYPOINT), "sh", "-c", 'ls "$PROMETHEUS_MULTIPROC_DIR"'],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["keep.txt"]


def test_entrypoint_needs_no_multiproc_dir(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    result = subprocess.run(["sh", str(ENTRYPOINT), "true"], env=env, timeout=30)
    assert result.returncode == 0


class _Handler(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        code = self.status if self.path == "/healthz" else 404
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve(status: int) -> Iterator[int]:
    handler = type("H", (_Handler,), {"status": status})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _healthcheck_argv() -> list[str]:
    instrs = dict(dockerfile_stages()[-1]["instructions"])
    spec = instrs["HEALTHCHECK"]
    cmd = spec[spec.index("CMD") + 3 :].strip()
    argv = split_args(cmd)
    assert argv[0] == "python"
    return [sys.executable, *argv[1:]]


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_healthcheck_command_probes_healthz(status: int, healthy: bool) -> None:
    for port in _serve(status):
        env = {**os.environ, "GATEWAY_PORT": str(port)}
        result = subprocess.run(_healthcheck_argv(), env=env, capture_output=True, timeout=30)
        assert (result.returncode == 0) is healthy, result.stderr


def test_healthcheck_fails_when_nothing_listens() -> None:
    for port in _serve(200):
        free_port = port
    env = {**os.environ, "GATEWAY_PORT": str(free_port)}
    result = subprocess.run(_healthcheck_argv(), env=env, capture_output=True, timeout=30)
    assert result.returncode != 0
