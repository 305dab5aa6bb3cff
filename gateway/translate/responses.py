"""OpenAI Responses API <-> the internal chat shape: response objects and usage.

The request converters live in `responses_request.py` (Responses -> chat) and
`responses_upstream.py` (chat -> Responses) and are re-exported here, so
`gateway.translate.responses` is the one import for everything Responses.

Ids are derived, not invented, whenever there is something to derive them from: a chat
completion `chatcmpl-X` becomes response `resp_X` with message item `msg_X` and reasoning
item `rs_X`, and tool call `call_Y` becomes function-call item `fc_Y`. A streamed and an
unstreamed translation of the same completion therefore carry the same ids, and a stream
never needs to know the whole answer before naming its items.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from gateway.accounting import chat_usage, responses_usage, usage_from_chat, usage_from_responses
from gateway.errors import UpstreamError
from gateway.translate.responses_request import responses_request_to_chat
from gateway.translate.responses_upstream import chat_request_to_responses

__all__ = [
    "chat_request_to_responses",
    "chat_response_to_responses",
    "chat_usage_to_responses",
    "finish_status",
    "response_object",
    "responses_request_to_chat",
    "responses_response_to_chat",
    "responses_usage_to_chat",
]

_ID_PREFIXES = ("chatcmpl-", "chatcmpl_", "resp_", "resp-", "call_", "fc_")


def id_suffix(value: Any) -> str:
    """The distinctive part of an upstream id; a fresh one when there is none."""
    if not isinstance(value, str) or not value:
        return secrets.token_hex(16)
    for prefix in _ID_PREFIXES:
        if value.startswith(prefix) and len(value) > len(prefix):
            return value[len(prefix) :]
    return value


def call_item_id(call_id: str) -> str:
    return "fc_" + id_suffix(call_id)


# ---------------------------------------------------------------- usage


def chat_usage_to_responses(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    parsed = usage_from_chat(usage) if usage else None
    return responses_usage(parsed) if parsed is not None else None


def responses_usage_to_chat(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    parsed = usage_from_responses(usage) if usage else None
    return chat_usage(parsed) if parsed is not None else None


# ---------------------------------------------------------------- log probabilities
# Chat's token logprob and Responses' LogProb are the same record, except that chat
# allows `bytes: null` and a stream delta's ResponseLogProb has no `bytes` at all.


def _token_bytes(entry: dict[str, Any]) -> list[int]:
    value = entry.get("bytes")
    return value if isinstance(value, list) else list(str(entry.get("token", "")).encode())


def _logprob(entry: dict[str, Any], with_bytes: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "token": str(entry.get("token", "")),
        "logprob": entry.get("logprob", 0.0),
    }
    if with_bytes:
        out["bytes"] = _token_bytes(entry)
    return out


def chat_logprobs_to_responses(content: Any, delta: bool = False) -> list[dict[str, Any]]:
    """Chat `logprobs.content` -> `output_text.logprobs` (or a delta event's logprobs)."""
    out = []
    for entry in content if isinstance(content, list) else []:
        item = _logprob(entry, with_bytes=not delta)
        item["top_logprobs"] = [_logprob(t, not delta) for t in entry.get("top_logprobs") or []]
        out.append(item)
    return out


def responses_logprobs_to_chat(logprobs: Any) -> list[dict[str, Any]]:
    """`output_text.logprobs` (or a delta's) -> chat `logprobs.content`."""
    out = []
    for entry in logprobs if isinstance(logprobs, list) else []:
        item = _logprob(entry)
        item["top_logprobs"] = [_logprob(t) for t in entry.get("top_logprobs") or []]
        out.append(item)
    return out


def chat_choice_logprobs(content: list[dict[str, Any]]) -> dict[str, Any] | None:
    return {"content": content, "refusal": None} if content else None


# ---------------------------------------------------------------- output items


def text_part(
    text: str,
    annotations: list[dict[str, Any]] | None = None,
    logprobs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "type": "output_text",
        "text": text,
        "annotations": annotations or [],
        "logprobs": logprobs or [],
    }


def refusal_part(refusal: str) -> dict[str, Any]:
    return {"type": "refusal", "refusal": refusal}


def message_item(item_id: str, parts: list[dict[str, Any]], status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": parts,
    }


def reasoning_item(item_id: str, texts: list[str]) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": t} for t in texts],
    }


def function_call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str
) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def annotation_to_responses(annotation: dict[str, Any]) -> dict[str, Any]:
    if annotation.get("type") == "url_citation" and isinstance(
        annotation.get("url_citation"), dict
    ):
        return {"type": "url_citation", **annotation["url_citation"]}
    return annotation


def _annotation_to_chat(annotation: dict[str, Any], offset: int) -> dict[str, Any]:
    if annotation.get("type") != "url_citation":
        return annotation
    citation = {k: v for k, v in annotation.items() if k != "type"}
    # Chat has one text; its indexes count from the start of the whole message.
    for key in ("start_index", "end_index"):
        if isinstance(citation.get(key), int):
            citation[key] += offset
    return {"type": "url_citation", "url_citation": citation}


def finish_status(finish_reason: str | None) -> tuple[str, dict[str, Any] | None]:
    """A chat finish_reason -> the Response `status` and `incomplete_details`."""
    if finish_reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish_reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def chat_message_to_output(
    message: dict[str, Any], base: str, status: str, logprobs: Any = None
) -> list[dict[str, Any]]:
    """One chat assistant message -> Response output items, in the order a stream makes them;
    `logprobs` is the choice's `logprobs.content`."""
    output: list[dict[str, Any]] = []
    if message.get("reasoning_content"):
        output.append(reasoning_item("rs_" + base, [message["reasoning_content"]]))
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(p.get("text") or "" for p in content if p.get("type") == "text")
    parts: list[dict[str, Any]] = []
    if content:
        annotations = [annotation_to_responses(a) for a in message.get("annotations") or []]
        parts.append(text_part(content, annotations, chat_logprobs_to_responses(logprobs)))
    if message.get("refusal"):
        parts.append(refusal_part(message["refusal"]))
    if parts:
        output.append(message_item("msg_" + base, parts, status))
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        call_id = call.get("id") or "call_" + secrets.token_hex(12)
        output.append(
            function_call_item(
                call_item_id(call_id),
                call_id,
                function.get("name") or "",
                function.get("arguments") or "",
                status,
            )
        )
    if not output:
        # An answer with nothing in it is still an (empty) message, not an empty output.
        output.append(message_item("msg_" + base, [text_part("")], status))
    return output


# ---------------------------------------------------------------- Response object


def _default(value: Any, fallback: Any) -> Any:
    return fallback if value is None else value


def echo_tool(tool: Any) -> Any:
    """A request's function tool as the Responses API echoes it: `type`, `name`,
    `parameters` and `strict` are always there (the published FunctionTool requires
    them), `description` is null when not given. `strict` is echoed as applied: a tool
    that does not ask for it reaches a chat upstream non-strict, as chat tools are."""
    if not isinstance(tool, dict) or tool.get("type") != "function":
        return tool
    return {
        **tool,
        "type": "function",
        "name": tool.get("name"),
        "description": tool.get("description"),
        "parameters": tool.get("parameters"),
        "strict": bool(tool.get("strict") or False),
    }


def response_object(
    request: dict[str, Any],
    *,
    response_id: str,
    created_at: int | float,
    model: str | None,
    status: str = "completed",
    output: list[dict[str, Any]] | None = None,
    usage: dict[str, Any] | None = None,
    incomplete_details: dict[str, Any] | None = None,
    service_tier: str | None = None,
) -> dict[str, Any]:
    """A Response object echoing the request's settings, with the API's defaults for the rest."""
    reasoning = dict(request.get("reasoning") or {})
    reasoning.setdefault("effort", request.get("reasoning_effort"))
    reasoning.setdefault("summary", None)
    text = dict(request.get("text") or {})
    text.setdefault("format", {"type": "text"})
    text.setdefault("verbosity", "medium")
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": incomplete_details,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "max_tool_calls": request.get("max_tool_calls"),
        "model": model or request.get("model"),
        "output": output or [],
        "parallel_tool_calls": _default(request.get("parallel_tool_calls"), True),
        "previous_response_id": None,
        "prompt_cache_key": request.get("prompt_cache_key"),
        "reasoning": reasoning,
        "safety_identifier": request.get("safety_identifier"),
        "service_tier": service_tier or request.get("service_tier") or "default",
        # Nothing is stored: the gateway is stateless whatever the client asked.
        "store": False,
        "temperature": _default(request.get("temperature"), 1.0),
        "text": text,
        "tool_choice": _default(request.get("tool_choice"), "auto"),
        "tools": [echo_tool(tool) for tool in request.get("tools") or []],
        "top_logprobs": _default(request.get("top_logprobs"), 0),
        "top_p": _default(request.get("top_p"), 1.0),
        "truncation": _default(request.get("truncation"), "disabled"),
        "usage": usage,
        "user": request.get("user"),
        "metadata": request.get("metadata") or {},
    }


def chat_response_to_responses(
    completion: dict[str, Any], request: dict[str, Any]
) -> dict[str, Any]:
    """An internal `chat.completion` -> a Response object for a Responses client."""
    choices = completion.get("choices") or [{}]
    choice = choices[0]
    status, incomplete = finish_status(choice.get("finish_reason"))
    base = id_suffix(completion.get("id"))
    item_status = "completed" if status == "completed" else "incomplete"
    return response_object(
        request,
        response_id="resp_" + base,
        created_at=completion.get("created") or int(time.time()),
        model=completion.get("model"),
        status=status,
        output=chat_message_to_output(
            choice.get("message") or {},
            base,
            item_status,
            (choice.get("logprobs") or {}).get("content"),
        ),
        usage=chat_usage_to_responses(completion.get("usage")),
        incomplete_details=incomplete,
        service_tier=completion.get("service_tier"),
    )


def chat_finish_reason(
    status: str | None, incomplete: dict[str, Any] | None, has_calls: bool
) -> str:
    """Response status -> chat finish_reason; being cut short outranks having called tools."""
    if status == "incomplete":
        reason = (incomplete or {}).get("reason")
        return "content_filter" if reason == "content_filter" else "length"
    return "tool_calls" if has_calls else "stop"


def reasoning_texts(item: dict[str, Any]) -> list[str]:
    texts = [s.get("text") or "" for s in item.get("summary") or []]
    texts += [
        c.get("text") or "" for c in item.get("content") or [] if c.get("type") == "reasoning_text"
    ]
    return [t for t in texts if t]


def raise_failed(response: dict[str, Any]) -> None:
    error = response.get("error") or {}
    raise UpstreamError(
        str(error.get("message") or "The upstream response failed."),
        code=str(error["code"]) if error.get("code") else "upstream_error",
    )


def responses_response_to_chat(resp: dict[str, Any]) -> dict[str, Any]:
    """A Response object -> an internal `chat.completion` with one choice."""
    if resp.get("status") == "failed":
        raise_failed(resp)
    text = ""
    refusals: list[str] = []
    reasoning: list[str] = []
    annotations: list[dict[str, Any]] = []
    logprobs: list[dict[str, Any]] = []
    tool_calls: list[dict[str, Any]] = []
    for item in resp.get("output") or []:
        kind = item.get("type")
        if kind == "message":
            for part in item.get("content") or []:
                if part.get("type") == "output_text":
                    logprobs += responses_logprobs_to_chat(part.get("logprobs"))
                    annotations += [
                        _annotation_to_chat(a, len(text)) for a in part.get("annotations") or []
                    ]
                    text += part.get("text") or ""
                elif part.get("type") == "refusal":
                    refusals.append(part.get("refusal") or "")
        elif kind == "reasoning":
            reasoning += reasoning_texts(item)
        elif kind == "function_call":
            tool_calls.append(
                {
                    "id": item.get("call_id"),
                    "type": "function",
                    "function": {
                        "name": item.get("name"),
                        "arguments": item.get("arguments") or "",
                    },
                }
            )
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text or None,
        "refusal": "".join(refusals) or None,
    }
    if reasoning:
        message["reasoning_content"] = "\n\n".join(reasoning)
    if tool_calls:
        message["tool_calls"] = tool_calls
    if annotations:
        message["annotations"] = annotations
    finish = chat_finish_reason(
        resp.get("status"), resp.get("incomplete_details"), bool(tool_calls)
    )
    created = resp.get("created_at")
    # No `system_fingerprint`: Responses has none, and the chat schema has no null for it.
    return {
        "id": "chatcmpl-" + id_suffix(resp.get("id")),
        "object": "chat.completion",
        "created": int(created) if created else int(time.time()),
        "model": resp.get("model"),
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": chat_choice_logprobs(logprobs),
                "finish_reason": finish,
            }
        ],
        "usage": responses_usage_to_chat(resp.get("usage")),
        "service_tier": resp.get("service_tier"),
    }
