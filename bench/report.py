"""The run's report: the targets checked, and the table printed at the end."""

from __future__ import annotations

from config import TARGETS


def check_targets(report: dict) -> dict:
    checks = {}
    tp = report.get("throughput", {}).get("c32", {}).get("gateway")
    if tp:
        checks["rps_32"] = {
            "value": tp["rps"],
            "target": f">= {TARGETS['rps_32']:g}",
            "ok": tp["rps"] >= TARGETS["rps_32"],
        }
    lat = report.get("latency_1conn", {}).get("gateway")
    if lat:
        v = lat["overhead_p50_ms"]
        checks["p50_overhead_ms"] = {
            "value": v,
            "target": f"<= {TARGETS['p50_overhead_ms']}",
            "ok": v <= TARGETS["p50_overhead_ms"],
        }
    tt = report.get("ttft", {}).get("gateway")
    if tt and "overhead_p50_ms" in tt:
        v = tt["overhead_p50_ms"]
        checks["ttft_overhead_ms"] = {
            "value": v,
            "target": f"<= {TARGETS['ttft_overhead_ms']}",
            "ok": v <= TARGETS["ttft_overhead_ms"],
        }
    peak = report.get("rss_end", {}).get("hwm_mb")
    if peak:
        checks["rss_peak_mb"] = {
            "value": peak,
            "target": f"<= {TARGETS['rss_mb']:g}",
            "ok": peak <= TARGETS["rss_mb"],
        }
    soak = report.get("soak")
    if soak:
        checks["rss_flat"] = {
            "value": f"+{soak['rss_growth_second_half_mb']} MB over the last "
            f"{soak['requests_served'] // 2} of {soak['requests_served']} requests",
            "target": f"<= max(2 MB, 2%) after >= {soak['target_requests']:,} requests",
            "ok": soak["flat"] and soak["requests_served"] >= soak["target_requests"],
        }
    held = report.get("held_streams")
    if held:
        checks["held_streams"] = {
            "value": f"{held['ok']}/{held['n']} ok, {held['rss_kb_per_held_stream']} KB/stream, "
            f"probe TTFT +{held['probe_ttft_added_ms']} ms",
            "target": "8,000 all ok, <= 30 KB/stream, probe TTFT <= +5 ms",
            "ok": held["meets_targets"],
        }
    st = report.get("startup", {})
    if "median_s" in st:
        v = st["median_s"]
        checks["ready_s"] = {
            "value": v,
            "target": f"<= {TARGETS['ready_s']}",
            "ok": v <= TARGETS["ready_s"],
        }
    return checks


def table(report: dict) -> str:
    names = report.get("targets_measured", ["direct", "bare", "gateway"])
    rows = [("", *names, "target")]

    def cell(v) -> str:
        if v is None:
            return "-"
        return (
            f"{v:,.0f}"
            if isinstance(v, float) and v >= 100
            else f"{v:g}"
            if isinstance(v, float)
            else str(v)
        )

    def row(label: str, values: dict, *keys: str, target: str = "") -> None:
        def get(name: str):
            v = values.get(name, {})
            for k in keys:
                v = v.get(k, {}) if isinstance(v, dict) else None
            return v if v != {} else None

        rows.append((label, *(cell(get(n)) for n in names), target))

    for conns in (32, 128):
        tp = report.get("throughput", {}).get(f"c{conns}")
        if tp:
            row(f"req/s, {conns} connections", tp, "rps", target=">= 1,800" if conns == 32 else "")
    tp = report.get("throughput", {}).get("c32")
    if tp:
        row("proxy CPU %, 32 conns", tp, "cpu_pct", "proxy")
        row("proxy CPU us/request, 32", tp, "proxy_cpu_us_per_req")
        row("others' CPU %, 32 conns", tp, "cpu_pct", "others")
        row("upstream CPU %, 32 conns", tp, "cpu_pct", "upstream")
    lat = report.get("latency_1conn")
    if lat:
        row("p50 ms, 1 connection", lat, "p50_ms")
        row("p99 ms, 1 connection", lat, "p99_ms")
        row("p99.9 ms, 1 connection", lat, "p999_ms")
        row("p50 overhead ms", lat, "overhead_p50_ms", target="<= 0.6")
        row("p99 overhead ms", lat, "overhead_p99_ms")
    tt = report.get("ttft")
    if tt:
        row("TTFT p50 ms, streamed", tt, "ttft_ms", "p50")
        row("TTFT p99 ms, streamed", tt, "ttft_ms", "p99")
        row("TTFT p50 overhead ms", tt, "overhead_p50_ms", target="<= 1")
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=False))
        )
        for r in rows
    ]
    lines.insert(1, "-" * len(lines[0]))

    extra = []
    ua = report.get("upstream_alone")
    if ua:
        extra.append(
            f"fake upstream alone (1 core, 32 conns): {ua['rps']:,.0f} req/s at {ua['cpu_pct']['upstream']}% CPU"
        )
    st = report.get("startup", {})
    if "median_s" in st:
        extra.append(
            f"gateway start to /readyz 200: median {st['median_s']} s of {st['ready_s']} (target <= 1.5 s)"
        )
    if "rss_after_start" in report:
        extra.append(
            f"gateway RSS: {report['rss_after_start']['rss_mb']} MB after start, "
            f"{report['rss_end']['rss_mb']} MB at the end, peak (VmHWM) {report['rss_end']['hwm_mb']} MB"
        )
    soak = report.get("soak")
    if soak:
        pts = ", ".join(f"{s['requests'] // 1000}k:{s['rss_mb']}" for s in soak["samples"])
        extra.append(
            f"RSS (MB) by requests served: {pts}  -> {'flat' if soak['flat'] else 'GROWING'}"
        )
    held = report.get("held_streams")
    if held:
        d = held["direct"]
        extra.append(
            f"held streams ({held['n']:,} at once, held {held['held_gap_s']:g} s): upstream alone {d['ok']:,} ok; "
            f"gateway {held['ok']:,} ok (rounds: {[x['ok'] for x in held['rounds']]}), "
            f"+{held['added_p50_ms']} ms p50 over the upstream alone, {held['rss_kb_per_held_stream']} KB RSS "
            f"per held stream, peak RSS {held['peak_rss_mb']} MB, RSS after each round "
            f"{held['rss_after_rounds_mb']} MB; probe TTFT p50 {held['probe_ttft_idle_p50_ms']} ms idle, "
            f"{held['probe_ttft_held_p50_ms']} ms while held (+{held['probe_ttft_added_ms']} ms)"
        )
    m = report.get("metrics")
    if m:
        extra.append(
            f"gateway /metrics: {m['requests']:,.0f} requests counted (by status: {m.get('by_status')}; "
            "a 499 is a call wrk cut off when a phase ended), "
            f"{m['tokens']:,.0f} tokens, ${m['cost_usd']:.4f} spend"
        )
    w = report.get("workers_2")
    if w:
        one = w["one_worker_unpinned"]
        extra.append(
            f"--workers 2 (all on cores 0,1): {w['c32']['rps']:,.0f} req/s @32, {w['c128']['rps']:,.0f} @128 "
            f"(1 worker same layout: {one['c32']['rps']:,.0f} @32, {one['c128']['rps']:,.0f} @128); "
            f"CPU @32: {w['c32']['cpu_pct']}"
        )
    prof = report.get("profile")
    if prof and "summary" in prof:
        top = ", ".join(f"{n} {p}%" for n, p in prof["summary"]["inclusive_by_package_pct"][:8])
        extra.append(
            f"profile (inclusive by package): {top}; flame graph: {prof.get('profile.svg')}"
        )
    checks = report.get("targets", {})
    if checks:
        extra.append(
            "targets: "
            + ", ".join(
                f"{k} {'ok' if c['ok'] else 'MISSED'} ({c['value']})" for k, c in checks.items()
            )
        )
    return "\n".join([*lines, "", *extra])
