"""The `gateway` CLI as a test runs it: its exit code, stdout and stderr, from the real
entry point either in this process (gateway.cli.main) or as `python -m gateway`.

A process start costs about 2 s on the test machine; each CLI test keeps one call as a
real process (the entry point, the interpreter's exit) and makes the rest in-process,
where the same code prints the same lines and exits with the same code."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

from gateway.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, process: bool = False
) -> subprocess.CompletedProcess[str]:
    """`gateway ARGS` with `env` as the whole environment (None: this one's)."""
    if process:
        return subprocess.run(
            [sys.executable, "-m", "gateway", *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
            env=env,
        )
    out, err = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    with (
        _environment(env),
        contextlib.chdir(ROOT),  # as the process runs: relative paths mean the same
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        try:
            main(list(args))
        except SystemExit as exit_:
            code = exit_.code
    if code is None:
        code = 0
    assert isinstance(code, int), code  # the CLI exits with a number, never a message
    return subprocess.CompletedProcess(["gateway", *args], code, out.getvalue(), err.getvalue())


@contextlib.contextmanager
def _environment(env: Mapping[str, str] | None) -> Iterator[None]:
    if env is None:
        yield
        return
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
