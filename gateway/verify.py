"""`gateway verify`: prove each model's declared capabilities against its real upstream.

Every declared capability that has a probe gets the smallest request that shows it
(`PROBES`), sent through the gateway's own request path in this process (so it is
translated for each upstream kind exactly as a client's call is) to the upstreams the
registry and the environment name. Before anything is sent, the plan and its
worst-case cost (gateway.estimate) are printed and confirmed; afterwards each model x
capability is verified, failed (with the upstream's error) or skipped (no probe:
audio, agentic, parallel_tools), with its latency and actual cost.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from gateway.accounting import CallRecord, cost_text
from gateway.estimate import estimate
from gateway.policy import apply_policy
from gateway.registry.snapshot import Model, Registry
from gateway.settings import Settings
from gateway.types import ClientAPI

if TYPE_CHECKING:
    import httpx

# A 1x1 red PNG: the smallest image a vision model must read.
PIXEL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
RECORD_TOOL = {
    "type": "function",
    "function": {
        "name": "record",
        "description": "Record one word.",
        "parameters": {
            "type": "object",
            "properties": {"word": {"type": "string"}},
            "required": ["word"],
        },
    },
}
ANSWER_SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "answer",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"answer": {"type": "string"}},
            "required": ["answer"],
            "additionalProperties": False,
        },
    },
}
SAY_OK = [{"role": "user", "content": "Reply with the single word: ok"}]


@dataclass(frozen=True, slots=True)
class Probe:
    model: str  # registry key
    capability: str
    client_api: ClientAPI  # chat | embeddings
    body: dict[str, Any]


@dataclass(slots=True)
class Outcome:
    model: str
    capability: str
    status: str  # verified | failed | skipped
    detail: str = ""
    latency_s: float | None = None
    cost: Decimal | None = None


def _chat(model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": copy.deepcopy(SAY_OK), "max_tokens": 16, **extra}


def _probe_body(model: Model, capability: str) -> tuple[ClientAPI, dict[str, Any]] | None:
    key = model.key
    if capability == "chat":
        return "chat", _chat(key)
    if capability == "streaming":
        return "chat", _chat(key, stream=True, stream_options={"include_usage": True})
    if capability == "tools":
        return "chat", _chat(
            key,
            max_tokens=64,
            tools=[RECORD_TOOL],
            tool_choice={"type": "function", "function": {"name": "record"}},
        )
    if capability == "vision":
        messages = [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What colour is this pixel? One word."},
                    {"type": "image_url", "image_url": {"url": PIXEL, "detail": "low"}},
                ],
            }
        ]
        return "chat", {"model": key, "messages": messages, "max_tokens": 16}
    if capability == "json_mode":
        return "chat", _chat(
            key,
            max_tokens=32,
            response_format=ANSWER_SCHEMA,
            messages=[{"role": "user", "content": 'Answer "ok" as JSON: {"answer": "ok"}'}],
        )
    if capability == "reasoning":
        return "chat", _chat(key, max_tokens=512, reasoning_effort="low")
    if capability == "embeddings":
        return "embeddings", {"model": key, "input": "ok", "encoding_format": "float"}
    return None


def plan(registry: Registry, keys: Sequence[str]) -> tuple[list[Probe], list[Outcome]]:
    """The probes for these models' declared capabilities, and the ones with no probe."""
    probes: list[Probe] = []
    skipped: list[Outcome] = []
    for key in keys:
        model = registry.models[key]
        declared = model.entry.capabilities
        flags = (
            list(declared)
            if not isinstance(declared, dict)
            else sorted(model.entry.capability_flags())
        )
        for capability in flags:
            made = _probe_body(model, capability)
            if made is None:
                skipped.append(Outcome(key, capability, "skipped", "no probe for this capability"))
            else:
                probes.append(Probe(key, capability, *made))
    return probes, skipped


def worst_case(registry: Registry, probes: Sequence[Probe]) -> Decimal | None:
    """The plan's worst-case cost; None when a probe's model has no price."""
    total = Decimal(0)
    for probe in probes:
        model = registry.models[probe.model]
        result = apply_policy(probe.client_api, copy.deepcopy(probe.body), model)
        cost = estimate(probe.client_api, model, result).max_cost
        if cost is None:
            return None
        total += cost
    return total


def check(probe: Probe, model: Model, response: httpx.Response) -> str | None:
    """Why the answer does not show the capability; None when it does."""
    if response.status_code != 200:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:200]
        return f"HTTP {response.status_code}: {message}"
    if probe.capability == "streaming":
        text = response.text
        if "data: [DONE]" not in text or '"delta"' not in text:
            return "the answer was not a complete chat stream"
        return None
    data = response.json()
    if probe.capability == "embeddings":
        vector = (data.get("data") or [{}])[0].get("embedding")
        want = model.entry.dimensions
        if not isinstance(vector, list) or not vector:
            return "no embedding in the answer"
        if want is not None and len(vector) != want:
            return f"the vector has {len(vector)} dimensions, the registry says {want}"
        return None
    message = (data.get("choices") or [{}])[0].get("message") or {}
    if probe.capability == "tools":
        calls = message.get("tool_calls") or []
        if not calls or calls[0].get("function", {}).get("name") != "record":
            return "no call of the forced function"
        return None
    if probe.capability == "json_mode":
        try:
            parsed = json.loads(message.get("content") or "")
        except ValueError:
            return "the answer is not JSON"
        return (
            None
            if isinstance(parsed, dict) and "answer" in parsed
            else "the JSON lacks the schema's field"
        )
    if probe.capability == "reasoning":
        details = (data.get("usage") or {}).get("completion_tokens_details") or {}
        return (
            None
            if (details.get("reasoning_tokens") or 0) > 0
            else "no reasoning tokens in the usage"
        )
    return None if message.get("content") else "an empty answer"


async def run(
    settings: Settings,
    registry_path: str,
    probes: Sequence[Probe],
    on_result: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Send the probes through an in-process gateway, one after another."""
    import httpx

    from gateway.app import create_app  # the whole app only when probing

    records: dict[str, CallRecord] = {}
    app = create_app(
        dataclasses.replace(settings, registry=registry_path, watch=False, master_key=None)
    )
    outcomes: list[Outcome] = []
    async with app.router.lifespan_context(app):
        app.state.gateway.sinks.append(
            lambda record: records.__setitem__(record.request_id, record)
        )
        app.state.gateway.resolver = None  # the probes are the operator's own, not a client key's
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://localhost", timeout=None
        ) as client:
            registry = app.state.gateway.registry
            for n, probe in enumerate(probes):
                rid = f"verify-{n}"
                path = (
                    "/v1/embeddings" if probe.client_api == "embeddings" else "/v1/chat/completions"
                )
                started = time.perf_counter()
                try:
                    response = await client.post(
                        path, json=probe.body, headers={"x-request-id": rid}
                    )
                    failure = check(probe, registry.models[probe.model], response)
                except httpx.HTTPError as exc:
                    failure = f"{type(exc).__name__}: {exc}"
                latency = time.perf_counter() - started
                record = records.get(rid)
                outcome = Outcome(
                    probe.model,
                    probe.capability,
                    "failed" if failure else "verified",
                    failure or "",
                    latency,
                    record.cost if record is not None else None,
                )
                outcomes.append(outcome)
                if on_result is not None:
                    on_result(outcome)
    return outcomes


def table(outcomes: Sequence[Outcome]) -> str:
    rows = [("MODEL", "CAPABILITY", "RESULT", "LATENCY", "COST USD", "DETAIL")]
    for o in outcomes:
        rows.append(
            (
                o.model,
                o.capability,
                o.status,
                "-" if o.latency_s is None else f"{o.latency_s * 1000:.0f} ms",
                "-" if o.cost is None else cost_text(o.cost),
                o.detail,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def probe_all(settings: Settings, registry_path: str, probes: Sequence[Probe]) -> list[Outcome]:
    return asyncio.run(run(settings, registry_path, probes))


def add_parser(commands: Any) -> None:
    verify = commands.add_parser(
        "verify", help="probe models' declared capabilities on their upstreams"
    )
    verify.add_argument(
        "models", nargs="*", metavar="MODEL", help="registry keys or aliases (default: all)"
    )
    verify.add_argument(
        "--registry", help="registry folder (env GATEWAY_REGISTRY, default: as serve)"
    )
    verify.add_argument("--yes", action="store_true", help="do not ask before sending the probes")
    verify.add_argument(
        "--write",
        action="store_true",
        help="record the result as `verification` in the registry files",
    )


def command(args: Any, registry: Registry, folder: str, settings: Settings) -> int:
    """The verify subcommand; returns the exit status (1 when a declared capability failed)."""
    import sys
    from datetime import UTC, datetime
    from pathlib import Path

    from gateway import verify_write

    keys: list[str] = []
    for name in args.models or sorted(registry.models):
        model = registry.find(name)
        if model is None:
            print(f"gateway: error: no model '{name}' in {folder}", file=sys.stderr)
            return 1
        if model.key not in keys:
            keys.append(model.key)
    probes, skipped = plan(registry, keys)
    if not probes:
        print("nothing to verify: no declared capability has a probe")
        return 0
    worst = worst_case(registry, probes)
    models = len({p.model for p in probes})
    print(
        f"{len(probes)} probe calls to {models} models; worst-case cost "
        f"{'unknown (a model has no price)' if worst is None else cost_text(worst) + ' USD'}"
    )
    for probe in probes:
        print(f"  {probe.model}  {probe.capability}")
    if not args.yes:
        try:
            reply = input("Send them? [y/N] ")
        except EOFError:
            reply = ""
        if reply.strip().lower() not in ("y", "yes"):
            print("nothing sent")
            return 1
    outcomes = probe_all(settings, folder, probes) + skipped
    order = {key: i for i, key in enumerate(keys)}
    outcomes.sort(key=lambda o: (order[o.model], o.status == "skipped"))
    print(table(outcomes))
    spent = sum((o.cost for o in outcomes if o.cost is not None), Decimal(0))
    print(f"actual cost of the probes: {cost_text(spent)} USD")
    failed = [o for o in outcomes if o.status == "failed"]
    if args.write:
        today = datetime.now(UTC).date().isoformat()
        verdicts: dict[str, verify_write.Verdict] = {}
        for key in keys:
            mine = [o for o in outcomes if o.model == key and o.status != "skipped"]
            if not mine:
                continue
            passed = tuple(o.capability for o in mine if o.status == "verified")
            status = "verified" if len(passed) == len(mine) else "unverified"
            verdicts[key] = verify_write.Verdict(status, today, passed)
        files = verify_write.model_files(Path(folder))
        if settings.custom_registry:
            custom = Path(settings.custom_registry)
            files += [custom] if custom.is_file() else sorted(custom.rglob("*.yaml"))
        for path in verify_write.write(files, verdicts):
            print(f"wrote {path}")
    return 1 if failed else 0
