"""`gateway serve` as a real process on 127.0.0.1: the one starter and stopper the tests
that need the real CLI (signals, workers, several replicas on one database) share."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import httpx

from tests.fakes.server import free_port

ROOT = Path(__file__).resolve().parents[2]


def start(
    registry: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    unset: Iterable[str] = (),
    capture: bool = False,
    ready_s: float = 30,
) -> tuple[subprocess.Popen[bytes], str]:
    """`gateway serve --registry REGISTRY --port P ARGS` in a session of its own, returned
    once /readyz answers 200; stop it with stop(). `env` is added to this process's
    environment, `unset` names variables taken out of it; with `capture`, stdout and
    stderr come together on proc.stdout (a test reads it after the process ends)."""
    port = free_port()
    environment = {**os.environ, **(env or {})}
    for name in unset:
        environment.pop(name, None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway",
            "serve",
            "--registry",
            str(registry),
            "--port",
            str(port),
            *args,
        ],
        env=environment,
        cwd=ROOT,
        start_new_session=True,  # stop() can then end the workers it forked too
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.STDOUT if capture else None,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_s
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return proc, url
        time.sleep(0.1)
    stop(proc)
    output = proc.stdout.read() if proc.stdout is not None else b""
    said = f": {output.decode(errors='replace')[-2000:]}" if output else ""
    raise RuntimeError(f"gateway serve did not become ready in {ready_s:g} s{said}")


def stop(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """SIGTERM (a graceful stop: in-flight calls finish, the ledger is flushed), then make
    sure nothing of the process group it leads is left."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=5)
