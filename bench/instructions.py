"""CPU instructions per proxied call, counted by valgrind's callgrind: load-independent.

Wall-clock and CPU-time figures (bench/run.py) move by 10% and more when anything else
runs on the machine; the number of instructions the gateway executes for one call does
not (two runs of the same tree agree to about 0.5%). So this is the tool for comparing
two source trees on a busy machine, e.g. main against a proposed change:

    python bench/instructions.py . /tmp/candidate [--kind chat|stream] [--n 300]

For each tree: the fake upstream (bench/fake_upstream.py) and `python -m gateway serve`
run from that tree under `valgrind --tool=callgrind --instr-atstart=no`, 30 calls warm it
up, then instrumentation is switched on for `--n` calls made one after another on one
keep-alive connection (the bench's chat body, or the streamed one read to its end), and
the total is divided by `--n`. All threads are counted; the client's own work is not
(it runs in this process). Under valgrind a call takes tens of milliseconds, so timers
fire in a different rhythm than at full speed: treat differences below ~1% as noise.

Needs valgrind (Debian: `apt-get install valgrind`). Prints one line per tree.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from config import BENCH, CHAT_BODY, CHAT_PATH, MASTER_KEY, STREAM_BODY
from procs import free_port

WARM_UP_CALLS = 30


def _wait(url: str, limit_s: float) -> None:
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} was not ready within {limit_s} s")


def _control(*args: str) -> None:
    subprocess.run(
        ["callgrind_control", *args],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _total(prefix: str) -> int:
    """The instruction total of callgrind's dump files (the `summary:` or `totals:` line)."""
    total = 0
    for name in glob.glob(prefix + "*"):
        with open(name) as f:
            for line in f:
                if line.startswith(("summary:", "totals:")):
                    total = max(total, int(line.split()[1]))
    return total


def measure(source: Path, n: int, kind: str, work: Path) -> float:
    """Instructions per call (millions) of the gateway in `source`."""
    up_port, gw_port = free_port(), free_port()
    upstream = subprocess.Popen(
        [
            sys.executable,
            str(BENCH / "fake_upstream.py"),
            *("--port", str(up_port), "--stream-gap-ms", "0"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "OPENAI_"))}
    env.update(
        {
            "GATEWAY_REGISTRY": str(BENCH / "registry"),
            "GATEWAY_MASTER_KEY": MASTER_KEY,
            "BENCH_UPSTREAM_URL": f"http://127.0.0.1:{up_port}/v1",
            "BENCH_UPSTREAM_KEY": "sk-bench-not-a-real-key",
            "PYTHONHASHSEED": "0",  # the same dict layouts, run after run
        }
    )
    out = str(work / f"callgrind.{source.name or 'tree'}.{kind}")
    gateway = subprocess.Popen(
        [
            *("valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"),
            *(sys.executable, "-m", "gateway", "serve", "--port", str(gw_port)),
        ],
        cwd=source,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    body = STREAM_BODY if kind == "stream" else CHAT_BODY
    try:
        _wait(f"http://127.0.0.1:{up_port}/health", 30)
        _wait(f"http://127.0.0.1:{gw_port}/readyz", 300)
        headers = {"authorization": f"Bearer {MASTER_KEY}"}
        with httpx.Client(
            base_url=f"http://127.0.0.1:{gw_port}", headers=headers, timeout=120
        ) as client:

            def call() -> None:
                with client.stream("POST", CHAT_PATH, json=body) as answer:
                    for _ in answer.iter_bytes():
                        pass
                    if answer.status_code != 200:
                        raise RuntimeError(f"the gateway answered {answer.status_code}")

            for _ in range(WARM_UP_CALLS):
                call()
            _control("--instr=on", str(gateway.pid))
            for _ in range(n):
                call()
            _control("--instr=off", str(gateway.pid))
            _control("--dump", str(gateway.pid))
        time.sleep(1)  # the dump is written by the gateway process itself
        return _total(out) / n / 1e6
    finally:
        for proc in (gateway, upstream):
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sources", nargs="*", default=["."], help="gateway source trees")
    parser.add_argument("--kind", choices=("chat", "stream"), default="chat")
    parser.add_argument("--n", type=int, default=300, help="calls counted per tree")
    args = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="gateway-instructions-") as work:
        results = {}
        for source in args.sources:
            path = Path(source).resolve()
            results[str(path)] = per_call = measure(path, args.n, args.kind, Path(work))
            print(f"{path}: {per_call:.3f} M instructions per {args.kind} call (n={args.n})")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
