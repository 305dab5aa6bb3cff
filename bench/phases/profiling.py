"""--profile: py-spy flame graph and collapsed stacks of the gateway under load."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from config import BENCH, LOAD_CORE, RESULTS, ROOT
from procs import pinned
from servers import Runner


def profile(r: Runner, pid: int, port: int, say) -> dict:
    """py-spy flame graph (SVG) and collapsed stacks of the gateway at 32 connections."""
    beside = Path(sys.executable).parent / "py-spy"  # pip install py-spy, in this venv
    spy = str(beside) if beside.exists() else shutil.which("py-spy")
    if not spy:
        return {"error": "py-spy is not installed: pip install py-spy"}
    out: dict = {}
    seconds = r.args.profile_s
    for fmt, name in (
        ("flamegraph", "profile.svg"),
        ("raw", "profile.txt"),
        ("speedscope", "profile.speedscope.json"),
    ):
        if fmt == "speedscope" and not r.args.speedscope:
            continue
        say(f"profile: py-spy {fmt} for {seconds} s at 32 connections")
        argv = pinned(
            LOAD_CORE,
            [
                spy,
                "record",
                "--pid",
                str(pid),
                "--rate",
                "250",
                "--duration",
                str(seconds),
                "--format",
                fmt,
                "-o",
                str(RESULTS / name),
            ],
        )
        spy_proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.5)
        load = r.wrk(port, 32, seconds)
        spy_proc.wait(seconds + 30)
        out[name] = str((RESULTS / name).relative_to(ROOT))
        out[f"rps_while_profiling_{fmt}"] = load["rps"]
    if (RESULTS / "profile.txt").exists():
        sys.path.insert(0, str(BENCH))
        from profile_summary import summarize

        out["summary"] = summarize(str(RESULTS / "profile.txt"))
    return out
