"""What every phase shares: paths, the model and request bodies, cores, the targets."""

from __future__ import annotations

from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
PROXY_CORE, LOAD_CORE = "0", "1"
MASTER_KEY = "bench-master-key"
MODEL = "bench:gpt-4o-mini"
CHAT_PATH = "/v1/chat/completions"
PHASES = (
    "upstream",
    "startup",
    "latency",
    "throughput",
    "ttft",
    "soak",
    "held_streams",
    "workers",
    "governance",
)
# held_streams runs only when asked for (--phases ...,held_streams): thousands of held
# connections for tens of seconds do not fit the default run's three minutes.
DEFAULT_PHASES = tuple(p for p in PHASES if p != "held_streams")

TARGETS = {  # the targets for this 2-core machine, one gateway worker
    "rps_32": 1800.0,
    "p50_overhead_ms": 0.6,
    "ttft_overhead_ms": 1.0,
    "rss_mb": 100.0,
    "ready_s": 1.5,
}

_MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant. Answer briefly and precisely."},
    {"role": "user", "content": "Write one friendly sentence greeting a new user of our service."},
]
CHAT_BODY = {
    "model": MODEL,
    "messages": _MESSAGES,
    "max_tokens": 4096,
    "temperature": 0.2,
    "user": "bench",
}
STREAM_BODY = {**CHAT_BODY, "stream": True}
