"""The registry's parameter policy, as a pure function of (request, model).

Client parameters are first folded into one vocabulary (`max_tokens`,
`max_completion_tokens` and `max_output_tokens` are one parameter; Responses'
`reasoning.effort` is `reasoning_effort`), then the model's policy runs in the
contract's order: `mapped` renames, `disabled` removes, `allowed` keeps only what it
lists, `limits` clamps, and the reasoning policy fills or converts the effort. The
translate stage renders the result in the upstream's own names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.errors import BadRequest
from gateway.registry.schema import EFFORTS, ReasoningPolicy
from gateway.registry.snapshot import Model
from gateway.translate.unified import THINKING
from gateway.types import ClientAPI

__all__ = ["ClientAPI", "PolicyResult", "apply_policy"]

# The request's content itself: never removed by a policy.
CONTENT_KEYS = frozenset({"model", "messages", "input", "instructions"})
# How the answer travels, not what it says: `stream` disabled by a policy means the
# upstream is called unstreamed and the stream is emulated, so it is never "dropped".
TRANSPORT_KEYS = frozenset({"stream", "stream_options", "encoding_format"})
# The gateway's thinking vocabulary, which only Gemini upstreams understand.
THINKING_KEYS = THINKING
# Embedding settings that mean something only to Gemini's native embedContent.
NATIVE_EMBEDDING_KEYS = ("task_type", "normalize_embedding")


@dataclass(slots=True)
class PolicyResult:
    params: dict[str, Any]
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    client_stream: bool = False
    upstream_stream: bool = False
    include_usage: bool = False  # the client asked for the usage chunk
    include_thoughts: bool = False
    effort: str | None = None
    effort_asked: bool = False  # the client set the effort (a policy default is not asking)


def apply_policy(
    client_api: ClientAPI, body: dict[str, Any], model: Model, strict: bool = False
) -> PolicyResult:
    """Rewrite `body` (in place; it is the request's own dict) by the model's policy."""
    params = body
    result = PolicyResult(params)
    result.client_stream = client_api != "embeddings" and params.get("stream") is True
    options = params.get("stream_options")
    result.include_usage = isinstance(options, dict) and options.get("include_usage") is True
    _normalize(client_api, params)

    policy = model.entry.param_policy
    for src, dst in policy.mapped.items():
        if src in params and src not in CONTENT_KEYS:
            value = params.pop(src)
            if dst not in params:
                params[dst] = value
            result.notes.append(f"renamed {src} to {dst}")
    for name in policy.disabled:
        if name in params and name not in CONTENT_KEYS:
            _remove(result, name)
    if policy.allowed is not None:
        keep = set(policy.allowed) | CONTENT_KEYS
        if "stream" in keep:
            keep.add("stream_options")
        keep.add("encoding_format")
        for name in [n for n in params if n not in keep]:
            _remove(result, name)

    _check_max_output_tokens(params)
    limit = model.entry.limits.max_output_tokens
    requested = params.get("max_output_tokens")
    if limit is not None and isinstance(requested, int) and requested > limit:
        params["max_output_tokens"] = limit
        result.notes.append(f"clamped max_output_tokens from {requested} to {limit}")

    if model.is_embedding:
        _embedding_params(result, model)
    else:
        _reasoning(result, model)
    result.upstream_stream = result.client_stream and params.get("stream") is True
    if strict and result.dropped:
        name = result.dropped[0]
        raise BadRequest(
            f"Parameter '{name}' is not supported by model '{model.key}' "
            "(x-gateway-strict is on, so it was not dropped).",
            param=name,
            code="unsupported_parameter",
        )
    return result


def _normalize(client_api: ClientAPI, params: dict[str, Any]) -> None:
    if client_api == "chat":
        # max_completion_tokens is the current name and wins over the deprecated one.
        for name in ("max_tokens", "max_completion_tokens"):
            if name in params:
                value = params.pop(name)
                if value is not None:
                    params["max_output_tokens"] = value
    elif client_api == "responses":
        reasoning = params.get("reasoning")
        if isinstance(reasoning, dict) and "effort" in reasoning:
            rest = {k: v for k, v in reasoning.items() if k != "effort"}
            if reasoning["effort"] is not None:
                params["reasoning_effort"] = reasoning["effort"]
            if rest:
                params["reasoning"] = rest
            else:
                del params["reasoning"]
    elif client_api == "embeddings" and "output_dimensionality" in params:
        params.setdefault("dimensions", params.pop("output_dimensionality"))
    for name in [n for n, v in params.items() if v is None and n not in CONTENT_KEYS]:
        # An explicit null means "not set" in OpenAI's API; dropping it is not a policy act.
        del params[name]


def _remove(result: PolicyResult, name: str) -> None:
    result.params.pop(name, None)
    if name == "stream":
        result.params.pop("stream_options", None)
    if name not in TRANSPORT_KEYS:
        result.dropped.append(name)


def _check_max_output_tokens(params: dict[str, Any]) -> None:
    value = params.get("max_output_tokens")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise BadRequest("max_output_tokens must be a positive integer.", param="max_output_tokens")


def _effort(value: Any) -> str:
    if not isinstance(value, str) or value not in EFFORTS:
        raise BadRequest(
            f"Invalid reasoning effort {value!r}: expected one of {', '.join(EFFORTS)}.",
            param="reasoning_effort",
        )
    return value


def _reasoning(result: PolicyResult, model: Model) -> None:
    params = result.params
    rp = model.entry.reasoning_policy
    effort = _effort(params["reasoning_effort"]) if "reasoning_effort" in params else None
    result.effort_asked = effort is not None
    if effort is None and rp is not None and rp.default is not None:
        effort = rp.default
        result.notes.append(f"reasoning_effort defaulted to {effort}")
    result.effort = effort
    wants = bool(params.pop("include_reasoning", False)) or bool(params.get("include_thoughts"))
    # A Responses client asks for the reasoning back with `reasoning.summary` (the only
    # way it has); on a Gemini model that means turning thought summaries on.
    reasoning = params.get("reasoning")
    wants = wants or (isinstance(reasoning, dict) and reasoning.get("summary") is not None)
    result.include_thoughts = wants or (rp is not None and rp.include_reasoning)

    wire = model.wire
    if wire.takes_effort:
        if effort is not None:
            params["reasoning_effort"] = effort
        for name in THINKING_KEYS:
            if name in params:
                _remove(result, name)
        if result.include_thoughts and wire.summary_for_thoughts and effort not in (None, "none"):
            reasoning = params.setdefault("reasoning", {})
            if isinstance(reasoning, dict):
                reasoning.setdefault("summary", "auto")
        return

    # Gemini: the effort becomes a thinking level or budget, never both, never beside an effort.
    params.pop("reasoning_effort", None)
    if rp is None or rp.mode == "openai_effort":
        if effort is not None and wire.maps_effort:
            params["reasoning_effort"] = effort  # the compat surface maps it itself
        elif effort is not None:
            result.dropped.append("reasoning_effort")
    elif rp.mode == "gemini_level":
        _gemini_level(result, rp, effort, model)
    else:
        _gemini_budget(result, rp, effort)
    if result.include_thoughts:
        params["include_thoughts"] = True
    else:
        params.pop("include_thoughts", None)


def _gemini_level(
    result: PolicyResult, rp: ReasoningPolicy, effort: str | None, model: Model
) -> None:
    params = result.params
    params.pop("thinking_budget", None)
    if "thinking_level" not in params and effort is not None:
        params["thinking_level"] = rp.map.get(effort, effort)  # type: ignore[call-overload]
    if rp.counts_against_output and effort is not None and "max_output_tokens" in params:
        base = params["max_output_tokens"]
        ratio = rp.reserve_ratio.get(effort, 0.0)  # type: ignore[call-overload]
        raised = round(base * (1 + ratio))
        ceiling = model.entry.max_output_tokens
        if ceiling is not None:
            raised = min(raised, ceiling)
        if raised != base:
            params["max_output_tokens"] = raised
            result.notes.append(f"max_output_tokens raised from {base} to {raised} for thinking")


def _gemini_budget(result: PolicyResult, rp: ReasoningPolicy, effort: str | None) -> None:
    params = result.params
    params.pop("thinking_level", None)
    budget = params.get("thinking_budget")
    if budget is None and effort is not None:
        budget = rp.budget_map.get(effort)  # type: ignore[call-overload]
        if budget is None:
            budget = rp.budget_map.get("medium", rp.budget_map.get("low"))
    if budget is None:
        return
    if isinstance(budget, bool) or not isinstance(budget, int):
        raise BadRequest("thinking_budget must be an integer.", param="thinking_budget")
    cap = params.get("max_output_tokens")
    if isinstance(cap, int) and budget > 0:
        # Gemini counts thoughts inside maxOutputTokens; keep room for the visible answer.
        budget = min(budget, max(cap - 100, 0))
    params["thinking_budget"] = budget


def _embedding_params(result: PolicyResult, model: Model) -> None:
    if not model.wire.native_embedding_settings:
        for name in NATIVE_EMBEDDING_KEYS:
            if name in result.params:
                _remove(result, name)
