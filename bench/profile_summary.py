"""Summarize a py-spy `--format raw` profile (collapsed stacks): where the time goes.

    python bench/profile_summary.py bench/results/profile.txt [--top 25]

Prints the share of samples by package (inclusive: a sample counts for every package on
its stack) and the functions with the most self and inclusive time. Only the main thread
(the event loop) is counted: helper threads (anyio's worker threads, the registry
watcher's native wait) look busy to a sampler while they only block, so they are
reported apart. `run.py --profile` calls it and stores the result in the JSON report.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter

# The py-spy frame format: "function (path/to/file.py:line)".
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

PACKAGES = (
    ("gateway/", "gateway"),
    ("fastapi/", "fastapi"),
    ("starlette/", "starlette"),
    ("uvicorn/", "uvicorn"),
    ("httpx_aiohttp/", "httpx_aiohttp"),
    ("httpx/", "httpx"),
    ("httpcore/", "httpcore"),
    ("aiohttp/", "aiohttp"),
    ("yarl/", "yarl"),
    ("multidict/", "multidict"),
    ("prometheus_client/", "prometheus_client"),
    ("pydantic", "pydantic"),
    ("anyio/", "anyio"),
    ("asyncio/", "asyncio"),
    ("uvloop/", "uvloop"),
    ("logging/", "logging"),
    ("email/", "email"),
    ("json/", "json"),
    ("typing", "typing"),
)


# The process's entry frames sit under every sample: not a package's cost.
_ENTRY = (
    "gateway/cli.py",
    "gateway/__main__.py",
    "<frozen runpy>",
    "uvicorn/main.py",
    "uvicorn/_compat.py",
)


def package_of(path: str) -> str:
    if path.endswith(_ENTRY):
        return "entry"
    for marker, name in PACKAGES:
        if marker in path:
            return name
    return "other"


def _frame(text: str) -> tuple[str, str]:
    match = _FRAME.match(text.strip())
    if not match:
        return text.strip(), "other"
    path = match.group("file")
    short = path.split("site-packages/")[-1].split("/lib/python3")[-1]
    return f"{match.group('func')} ({short})", package_of(path)


def summarize(path: str, top: int = 25) -> dict:
    total = 0
    other_threads = 0
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    by_package: Counter[str] = Counter()
    self_by_package: Counter[str] = Counter()
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            stack, _, count_text = line.rstrip("\n").rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            parts = stack.split(";")
            if parts[0].startswith("Thread._bootstrap"):
                other_threads += count
                continue
            total += count
            frames = [_frame(part) for part in parts]
            name, package = frames[-1]
            self_time[name] += count
            self_by_package[package] += count
            for seen in {n for n, _ in frames}:
                inclusive[seen] += count
            for seen in {p for _, p in frames} - {"entry"}:
                by_package[seen] += count

    def share(counter: Counter[str], n: int) -> list[list]:
        return [[name, round(100 * c / total, 1)] for name, c in counter.most_common(n)]

    return {
        "samples": total,
        "other_thread_samples": other_threads,
        "inclusive_by_package_pct": share(by_package, 30),
        "self_by_package_pct": share(self_by_package, 30),
        "top_self_pct": share(self_time, top),
        "top_inclusive_pct": share(inclusive, top * 2),
    }


def render(summary: dict) -> str:
    lines = [
        f"{summary['samples']} samples on the main thread "
        f"({summary['other_thread_samples']} on other threads, not counted)"
    ]
    for title, key in (
        ("inclusive time by package", "inclusive_by_package_pct"),
        ("self time by package", "self_by_package_pct"),
        ("top self time", "top_self_pct"),
        ("top inclusive time", "top_inclusive_pct"),
    ):
        lines.append(f"\n{title}:")
        lines.extend(f"  {pct:5.1f}%  {name}" for name, pct in summary[key])
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raw", help="py-spy record --format raw output")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args()
    summary = summarize(args.raw, args.top)
    print(json.dumps(summary, indent=1) if args.json else render(summary))


if __name__ == "__main__":
    main()
