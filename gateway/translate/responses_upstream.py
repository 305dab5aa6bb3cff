"""Request bodies: the internal (chat) request -> an OpenAI Responses create body.

Used when a model's endpoint is `responses`. Whatever cannot be carried to the Responses
API without changing what the client asked for is a 400 naming the field.

  kept, same name:  model, temperature, top_p, parallel_tool_calls, metadata, user, stream,
                    store (default false: the gateway keeps no state), service_tier,
                    safety_identifier, prompt_cache_key, prompt_cache_retention
  translated:       messages (system/developer messages stay input items in place), tools,
                    tool_choice, response_format (text.format), verbosity (text.verbosity),
                    reasoning_effort (reasoning.effort), include_reasoning/include_thoughts
                    (reasoning.summary "auto"), max_output_tokens (or max_completion_tokens
                    / max_tokens when the policy left them), logprobs (include
                    "message.output_text.logprobs") with top_logprobs
  dropped:          stream_options (Responses always reports usage), seed (best effort
                    only), thinking_level, thinking_budget (Gemini-only), the assistant's
                    reasoning_content (Responses only takes back reasoning it issued),
                    Gemini's extra_content, any unknown field; thought signatures folded
                    into tool call ids (gemini_compat) are cut off the call_id
  400:              n > 1, stop, frequency_penalty, presence_penalty,
                    logit_bias, audio, audio modalities, prediction, web_search_options,
                    functions, function_call, non-function tools, input_audio parts
"""

from __future__ import annotations

from typing import Any

from gateway.errors import BadRequest
from gateway.translate.history import short_call_id
from gateway.translate.shapes import ResponsesItem

_CHAT_KEPT = (
    "model",
    "temperature",
    "top_p",
    "parallel_tool_calls",
    "metadata",
    "user",
    "stream",
    "store",
    "service_tier",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
)


def _bad(message: str, param: str) -> BadRequest:
    return BadRequest(message, param=param)


def chat_request_to_responses(body: dict[str, Any]) -> dict[str, Any]:
    """The internal chat request -> a Responses create body for a `responses` upstream."""
    _refuse_chat_only(body)
    out: dict[str, Any] = {k: body[k] for k in _CHAT_KEPT if body.get(k) is not None}
    out.setdefault("store", False)
    out["input"] = _messages_to_input(body.get("messages"))

    max_tokens = next(
        (
            body[k]
            for k in ("max_output_tokens", "max_completion_tokens", "max_tokens")
            if body.get(k) is not None
        ),
        None,
    )
    if max_tokens is not None:
        out["max_output_tokens"] = max_tokens

    if body.get("tools"):
        out["tools"] = [_tool_to_responses(tool) for tool in body["tools"]]
    if body.get("tool_choice") is not None:
        out["tool_choice"] = _tool_choice_to_responses(body["tool_choice"])

    text: dict[str, Any] = {}
    if body.get("response_format") is not None:
        text["format"] = _format_to_responses(body["response_format"])
    if body.get("verbosity") is not None:
        text["verbosity"] = body["verbosity"]
    if text:
        out["text"] = text

    if body.get("logprobs"):
        out["include"] = ["message.output_text.logprobs"]
        if body.get("top_logprobs"):
            out["top_logprobs"] = body["top_logprobs"]

    # The policy puts `reasoning.summary` on the request when the client wants the
    # reasoning back (include_reasoning); the effort joins it.
    given = body.get("reasoning")
    reasoning: dict[str, Any] = dict(given) if isinstance(given, dict) else {}
    if body.get("reasoning_effort") is not None:
        reasoning["effort"] = body["reasoning_effort"]
    # Responses only returns reasoning text when a summary is asked for.
    if body.get("include_reasoning") or body.get("include_thoughts"):
        reasoning["summary"] = "auto"
    if reasoning:
        out["reasoning"] = reasoning
    return out


def _refuse_chat_only(body: dict[str, Any]) -> None:
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        raise _bad("'n' greater than 1 is not supported for this model.", "n")
    checks = {
        "stop": "stop sequences",
        "frequency_penalty": "frequency_penalty",
        "presence_penalty": "presence_penalty",
        "logit_bias": "logit_bias",
        "audio": "audio output",
        "prediction": "predicted outputs",
        "web_search_options": "web search",
        "functions": "legacy 'functions' (use 'tools')",
        "function_call": "legacy 'function_call' (use 'tool_choice')",
    }
    for field, what in checks.items():
        if body.get(field):  # a zero, false or empty value asks for nothing
            raise _bad(
                f"This model is served through the Responses API, which has no {what}.", field
            )
    if "audio" in (body.get("modalities") or []):
        raise _bad("This model cannot produce audio.", "modalities")


def _messages_to_input(messages: Any) -> list[ResponsesItem]:
    if not isinstance(messages, list) or not messages:
        raise _bad("'messages' must be a non-empty list.", "messages")
    items: list[ResponsesItem] = []
    for message in messages:
        role = message.get("role") if isinstance(message, dict) else None
        if role in ("system", "developer", "user"):
            # Kept in place rather than folded into `instructions`: a system message in the
            # middle of a conversation keeps its position, and with no stored state the two
            # forms mean the same to the model.
            items.append(
                {
                    "type": "message",
                    "role": role,
                    "content": _content_to_responses(message.get("content")),
                }
            )
        elif role == "assistant":
            items.extend(_assistant_to_items(message))
        elif role == "tool":
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": short_call_id(message.get("tool_call_id")),
                    "output": _text_of(message.get("content")),
                }
            )
        else:
            raise _bad(f"Messages with role '{role}' cannot be sent to this model.", "messages")
    return items


def _assistant_to_items(message: dict[str, Any]) -> list[ResponsesItem]:
    # `reasoning_content` is dropped: Responses only takes back reasoning items it issued.
    items: list[ResponsesItem] = []
    text = _text_of(message.get("content")) or message.get("refusal") or ""
    if text:
        items.append({"type": "message", "role": "assistant", "content": text})
    for call in message.get("tool_calls") or []:
        if call.get("type", "function") != "function":
            raise _bad("Only function tool calls can be sent to this model.", "messages")
        function = call.get("function") or {}
        items.append(
            {
                "type": "function_call",
                "call_id": short_call_id(call.get("id")),
                "name": function.get("name"),
                "arguments": function.get("arguments") or "",
            }
        )
    return items


def _text_of(content: Any) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    return "".join(part.get("text") or "" for part in content if part.get("type") == "text")


def _content_to_responses(content: Any) -> str | list[dict[str, Any]]:
    if content is None or isinstance(content, str):
        return content or ""
    parts: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            parts.append({"type": "input_text", "text": part.get("text") or ""})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            detail = image.get("detail") if isinstance(image, dict) else None
            parts.append({"type": "input_image", "image_url": url, "detail": detail or "auto"})
        elif kind == "file":
            file = part.get("file") or {}
            parts.append({"type": "input_file", **{k: v for k, v in file.items() if v is not None}})
        else:
            raise _bad(f"Content parts of type '{kind}' cannot be sent to this model.", "messages")
    return parts


def _tool_to_responses(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type") != "function":
        raise _bad(f"Tools of type '{tool.get('type')}' cannot be sent to this model.", "tools")
    function = tool.get("function") or {}
    out: dict[str, Any] = {
        "type": "function",
        "name": function.get("name"),
        "parameters": function.get("parameters"),
        # Chat tools are non-strict unless they say so; Responses may default the other way.
        "strict": bool(function.get("strict", False)),
    }
    if function.get("description") is not None:
        out["description"] = function["description"]
    return out


def _tool_choice_to_responses(choice: Any) -> Any:
    if isinstance(choice, str):
        return choice
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "function":
        return {"type": "function", "name": (choice.get("function") or {}).get("name")}
    if kind == "allowed_tools":
        allowed = choice.get("allowed_tools") or {}
        tools = [
            {"type": "function", "name": (t.get("function") or {}).get("name")}
            for t in allowed.get("tools") or []
        ]
        return {"type": "allowed_tools", "mode": allowed.get("mode"), "tools": tools}
    raise _bad(f"tool_choice of type '{kind}' cannot be sent to this model.", "tool_choice")


def _format_to_responses(fmt: dict[str, Any]) -> dict[str, Any]:
    kind = fmt.get("type")
    if kind == "json_schema":
        schema = fmt.get("json_schema") or {}
        keep = ("name", "schema", "strict", "description")
        return {"type": "json_schema", **{k: schema[k] for k in keep if schema.get(k) is not None}}
    if kind in ("json_object", "text"):
        return {"type": kind}
    raise _bad(f"response_format of type '{kind}' is not supported.", "response_format")
