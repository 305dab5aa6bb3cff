"""Render the unified parameters in an OpenAI upstream's own names (pure)."""

from __future__ import annotations

from typing import Any

from gateway.policy import PolicyResult


def set_stream(body: dict[str, Any], result: PolicyResult, usage_option: bool) -> None:
    """Stream upstream only when the client streams and the policy lets it; always ask
    for usage then, so a streamed call is counted exactly like an unstreamed one."""
    if result.upstream_stream:
        body["stream"] = True
        if usage_option:
            options = body.get("stream_options")
            options = dict(options) if isinstance(options, dict) else {}
            options["include_usage"] = True
            body["stream_options"] = options
    else:
        body.pop("stream", None)
        body.pop("stream_options", None)


def openai_chat(params: dict[str, Any], result: PolicyResult, native_id: str) -> dict[str, Any]:
    body = params
    body["model"] = native_id
    if "max_output_tokens" in body:
        # OpenAI's current name; `max_tokens` is rejected by reasoning models.
        body["max_completion_tokens"] = body.pop("max_output_tokens")
    set_stream(body, result, usage_option=True)
    return body


def openai_responses(params: dict[str, Any], result: PolicyResult, native_id: str) -> dict[str, Any]:
    body = params
    body["model"] = native_id
    effort = body.pop("reasoning_effort", None)
    if effort is not None:
        reasoning = body.get("reasoning")
        reasoning = dict(reasoning) if isinstance(reasoning, dict) else {}
        reasoning["effort"] = effort
        body["reasoning"] = reasoning
    set_stream(body, result, usage_option=False)
    return body


def openai_embeddings(params: dict[str, Any], native_id: str) -> dict[str, Any]:
    params["model"] = native_id
    return params
