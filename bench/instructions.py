"""CPU instructions per proxied call, counted by valgrind's callgrind: load-independent.

Wall-clock and CPU-time figures (bench/run.py) move by 10% and more when anything else
runs on the machine; the number of instructions the gateway executes for one call does
not (two runs of the same tree agree to about 0.5%). So this is the tool for comparing
two source trees on a busy machine, e.g. main against a proposed change:

    python bench/instructions.py . /tmp/candidate [--kind chat|stream] [--n 300]
        [--keys none,plain,limited]

For each tree: the fake upstream (bench/fake_upstream.py) and `python -m gateway serve`
run from that tree under `valgrind --tool=callgrind --instr-atstart=no`, 30 calls warm it
up, then instrumentation is switched on for `--n` calls made one after another on one
keep-alive connection (the bench's chat body, or the streamed one read to its end), and
the total is divided by `--n`. All threads are counted; the client's own work is not
(it runs in this process). Under valgrind a call takes tens of milliseconds, so timers
fire in a different rhythm than at full speed: treat differences below ~1% as noise.

`--keys` measures each tree once per setup: `none` (no database, the master key),
`plain` (a SQLite database and a virtual key without limits, sent by the client: the
key cache, the ledger, the per-key metrics) and `limited` (a key with the governance
phase's budget and rate limits, all far from binding: admission and settlement too).
With a database the gateway does timed work whatever the traffic (the key cache polls
the store every 0.5 s), and it writes the ledger every 0.5 s. So every setup first
counts an idle window (`--idle-s`, no calls) for the instructions per second spent
with no traffic; the window of calls ends after one more flush interval (every row of
the counted calls written inside it), and what the idle rate accounts for over the
window's length is subtracted: the figure is the cost of the calls themselves. The
idle rate is printed beside it. At full speed a flush writes hundreds of rows, under
valgrind tens: the fixed cost of one batch weighs more here than it does there. The same
holds, more so, for `limited`: the shares' sync (five a second, one or more round trips
to the counters whenever calls have spent) comes every few calls here and every few
hundred at full speed, so `limited` overstates the key's cost by about 0.15 M
instructions a call (measured with the sync fifteen times rarer).

Needs valgrind (Debian: `apt-get install valgrind`). Prints one line per tree.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from gateway.store.plain import DEFAULT_PATH

from config import BENCH, CHAT_BODY, CHAT_PATH, MASTER_KEY, STREAM_BODY
from procs import free_port

WARM_UP_CALLS = 30
SETUPS = ("none", "plain", "limited")
_RUNS = itertools.count(1)
SETTLE_S = 1.2  # past the ledger's FLUSH_S (0.5 s) twice over: the queue is written


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


def _total(dump: str) -> int:
    """The instruction total of one callgrind dump file (`out.1`, `out.2`, ...: each
    holds what was counted since the dump before it, all threads together)."""
    with open(dump) as f:
        for line in f:
            if line.startswith("totals:"):
                return int(line.split()[1])
    raise RuntimeError(f"{dump} has no totals line")


def _key(source: Path, database: str, setup: str) -> str:
    """A virtual key made by the tree's own CLI (the governance phase's flags for `limited`)."""
    from phases.governance import FLAGS, make_key

    flags = FLAGS if setup == "limited" else []
    return make_key(database, flags, f"bench-{setup}", tree=source, timeout_s=120)


@dataclass(frozen=True)
class Count:
    per_call: float  # millions of instructions per call, the idle rate taken out
    raw: float  # millions per call, everything counted in the window
    idle_per_s: float  # millions per second with no traffic


def measure(source: Path, n: int, kind: str, work: Path, setup: str, idle_s: float) -> Count:
    """Instructions per call of the gateway in `source`, in one setup (see SETUPS)."""
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
    # A tree may be given more than once (two runs of it, for the noise): its own files.
    tag = f"{source.name or 'tree'}.{kind}.{setup}.{next(_RUNS)}"
    secret = MASTER_KEY
    if setup == "none":
        # The default URL, as the governance phase's no_keys: the gateway opens nothing
        # while its file does not exist (any other URL is opened, and created).
        if (source / DEFAULT_PATH).exists():
            sys.exit(f"{source / DEFAULT_PATH} exists: the 'none' setup would open it")
    else:
        env["GATEWAY_DATABASE_URL"] = f"sqlite:///{work / tag}.db"
        secret = _key(source, env["GATEWAY_DATABASE_URL"], setup)
    out = str(work / f"callgrind.{tag}")
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
        headers = {"authorization": f"Bearer {secret}"}
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
            time.sleep(SETTLE_S)  # the warm-up's ledger rows are written outside the windows
            started = time.monotonic()
            _control("--instr=on", str(gateway.pid))
            time.sleep(idle_s)
            _control("--instr=off", str(gateway.pid))
            idle = time.monotonic() - started
            _control("--dump", str(gateway.pid))
            started = time.monotonic()
            _control("--instr=on", str(gateway.pid))
            for _ in range(n):
                call()
            time.sleep(SETTLE_S)  # the last calls' rows are written inside the window
            _control("--instr=off", str(gateway.pid))
            elapsed = time.monotonic() - started
            _control("--dump", str(gateway.pid))
        time.sleep(1)  # the dumps are written by the gateway process itself
        idle_rate = _total(out + ".1") / idle
        busy = _total(out + ".2")
        return Count((busy - idle_rate * elapsed) / n / 1e6, busy / n / 1e6, idle_rate / 1e6)
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
    parser.add_argument(
        "--keys",
        default="none",
        help=f"comma-separated setups, each measured on every tree: {', '.join(SETUPS)}",
    )
    parser.add_argument(
        "--idle-s", type=float, default=5.0, help="the idle window's length, in seconds"
    )
    parser.add_argument(
        "--keep", type=Path, help="a folder to keep callgrind's files in, for callgrind_annotate"
    )
    args = parser.parse_args()
    setups = [name.strip() for name in args.keys.split(",") if name.strip()]
    if not setups or any(name not in SETUPS for name in setups):
        sys.exit(f"--keys: a comma-separated list of {', '.join(SETUPS)}")
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="gateway-instructions-") as temporary:
        work = args.keep or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        results: dict[str, dict[str, dict[str, float]]] = {}
        for source in args.sources:
            path = Path(source).resolve()
            for setup in setups:
                count = measure(path, args.n, args.kind, work, setup, args.idle_s)
                results.setdefault(str(path), {})[setup] = {
                    "per_call": round(count.per_call, 4),
                    "raw": round(count.raw, 4),
                    "idle_per_s": round(count.idle_per_s, 4),
                }
                print(
                    f"{path} [{setup}]: {count.per_call:.3f} M instructions per {args.kind} call "
                    f"({count.raw:.3f} counted, {count.idle_per_s:.3f} M/s idle taken out; "
                    f"n={args.n})",
                    flush=True,
                )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
