"""Held streams: N streamed calls open at once, and a probe's time to first token meanwhile.

Each held call is marked `"user": "held"`, which the fake upstream (bench/fake_upstream.py)
answers with its first chunk at once and the rest after `--held-gap-ms`: an LLM stream in
mid-generation. The probe calls are not marked, so they finish at once.

1. idle probes: `--probes` streamed calls one after another on one connection, TTFT each;
2. N calls started together (at most `--connect-burst` connections being opened at a
   time), each on its own connection; "held" once its first chunk is in;
3. with all N held: the target's RSS (`--pid`), then the probes again;
4. every call read to its end: success is a 200 that ends with `data: [DONE]`.

    python bench/held.py http://127.0.0.1:8080/v1/chat/completions --body held.json \\
        --probe-body stream.json --n 1000 [--pid 1234] [--auth "Bearer KEY"]

Prints one JSON object (milliseconds, MB).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import statistics
import time
from collections import Counter

from ttft import _Conn, _ms, _request

try:
    import uvloop
except ImportError:
    uvloop = None


def rss_mb(pid: int | None) -> dict[str, float]:
    if pid is None:
        return {}
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out["rss_mb" if line.startswith("VmRSS") else "hwm_mb"] = (
                    int(line.split()[1]) / 1024
                )
    return out


class Held:
    """One held call on its own connection."""

    __slots__ = ("done", "first", "ok", "status", "total")

    def __init__(self) -> None:
        self.status = 0
        self.first = 0.0
        self.total = 0.0
        self.ok = False
        self.done = False


async def _hold(
    host: str,
    port: int,
    request: bytes,
    call: Held,
    burst: asyncio.Semaphore,
    held: asyncio.Event,
    counter: list[int],
    n: int,
) -> None:
    start = time.perf_counter()
    writer = None
    try:
        async with burst:
            reader, writer = await asyncio.open_connection(host, port)
        writer.write(request)
        status_line = await reader.readline()
        call.status = int(status_line.split(b" ", 2)[1])
        chunked = False
        length = 0
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"content-length":
                length = int(value.strip())
        last = b""
        if chunked:
            while True:
                size = int((await reader.readline()).split(b";")[0].strip(), 16)
                if size == 0:
                    await reader.readline()
                    break
                data = await reader.readexactly(size + 2)
                if not call.first:
                    call.first = time.perf_counter() - start
                    counter[0] += 1
                    if counter[0] >= n:
                        held.set()
                last = (last + data)[-64:]
        elif length:
            last = await reader.readexactly(length)
        call.ok = call.status == 200 and b"data: [DONE]" in last
    except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
        call.ok = False
    finally:
        call.total = time.perf_counter() - start
        call.done = True
        if not call.first:  # failed before its first chunk: no longer awaited as held
            counter[0] += 1
            if counter[0] >= n:
                held.set()
        if writer is not None:
            writer.close()


async def _probes(url: str, body: bytes, auth: str | None, count: int) -> dict:
    host, port, request = _request(url, body, auth)
    reader, writer = await asyncio.open_connection(host, port)
    conn = _Conn(reader, writer)
    firsts, errors = [], 0
    for _ in range(count):
        status, first, _total = await conn.exchange(request)
        if status != 200 or not first:
            errors += 1
        else:
            firsts.append(first)
    writer.close()
    if not firsts:
        return {"requests": 0, "errors": errors}
    return {
        "requests": len(firsts),
        "errors": errors,
        "ttft_ms": {
            "mean": round(statistics.fmean(firsts) * 1000, 3),
            "p50": _ms(firsts, 0.5),
            "p90": _ms(firsts, 0.9),
        },
    }


async def measure(args: argparse.Namespace, held_body: bytes, probe_body: bytes) -> dict:
    await _probes(args.url, probe_body, args.auth, 20)  # warm-up
    idle = await _probes(args.url, probe_body, args.auth, args.probes)
    before = rss_mb(args.pid)
    host, port, request = _request(args.url, held_body, args.auth)
    calls = [Held() for _ in range(args.n)]
    burst = asyncio.Semaphore(args.connect_burst)
    all_held = asyncio.Event()
    counter = [0]
    started = time.perf_counter()
    tasks = [
        asyncio.create_task(_hold(host, port, request, c, burst, all_held, counter, args.n))
        for c in calls
    ]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_held.wait(), args.ready_timeout)
    ramp_s = time.perf_counter() - started
    holding = sum(1 for c in calls if c.first and not c.done)
    at_held = rss_mb(args.pid)
    during = await _probes(args.url, probe_body, args.auth, args.probes)
    still = sum(1 for c in calls if c.first and not c.done)
    await asyncio.gather(*tasks)
    after = rss_mb(args.pid)
    totals = [c.total for c in calls if c.ok]
    out = {
        "n": args.n,
        "ok": sum(c.ok for c in calls),
        "statuses": dict(Counter(str(c.status) for c in calls if not c.ok)),
        "ramp_s": round(ramp_s, 2),
        "held_at_probe_start": holding,
        "held_at_probe_end": still,
        "total_ms": {"p50": _ms(totals, 0.5), "p99": _ms(totals, 0.99), "max": _ms(totals, 1.0)}
        if totals
        else {},
        "probe_idle": idle,
        "probe_held": during,
    }
    if args.pid is not None:
        out["rss_mb"] = {
            "before": round(before["rss_mb"], 1),
            "held": round(at_held["rss_mb"], 1),
            "after": round(after["rss_mb"], 1),
            "peak": round(after["hwm_mb"], 1),
        }
        if holding:
            out["rss_kb_per_held_stream"] = round(
                (at_held["rss_mb"] - before["rss_mb"]) * 1024 / holding, 1
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="held streams and a probe's TTFT meanwhile")
    parser.add_argument("url")
    parser.add_argument("--body", required=True, help='the held calls\' JSON body ("user": "held")')
    parser.add_argument("--probe-body", required=True, help="the probes' JSON body")
    parser.add_argument("--auth", default=None)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--probes", type=int, default=50)
    parser.add_argument("--pid", type=int, default=None, help="the process whose RSS to sample")
    parser.add_argument(
        "--connect-burst", type=int, default=256, help="connections opened at a time"
    )
    parser.add_argument(
        "--ready-timeout", type=float, default=120.0, help="the most to wait for all to be held"
    )
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:  # one descriptor per held call, and a few
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if uvloop is not None:
        uvloop.install()
    with open(args.body, "rb") as f:
        held_body = f.read()
    with open(args.probe_body, "rb") as f:
        probe_body = f.read()
    print(json.dumps(asyncio.run(measure(args, held_body, probe_body))))


if __name__ == "__main__":
    main()
