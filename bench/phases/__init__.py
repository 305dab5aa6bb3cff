"""The benchmark's phases, one module each; `Session` is what they share.

Each phase's `measure(s)` writes its part of the report. The runner (bench/run.py)
starts the processes the phases measure and calls the phases in a fixed order.
"""

from __future__ import annotations

import argparse
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field

from servers import Runner

# A measured target: its port, and the process groups whose CPU use wrk records.
Target = tuple[int, dict[str, list[int]]]


@dataclass
class Session:
    args: argparse.Namespace
    runner: Runner
    report: dict
    say: Callable[[str], None]
    t_start: float
    upstream_pids: list[int] = field(default_factory=list)
    gateway: subprocess.Popen | None = None
    gw_port: int = 0
    gw_pids: list[int] = field(default_factory=list)
    targets: dict[str, Target] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # direct, bare, gateway, candidates...
