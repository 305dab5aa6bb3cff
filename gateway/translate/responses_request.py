"""Request bodies: an OpenAI Responses create body -> the internal (chat) request.

Whatever cannot be carried to a chat upstream without changing what the client asked
for is a 400 naming the field, never a silent drop. Fields that only tune bookkeeping
on the Responses side are dropped.

  kept, same name:  model, temperature, top_p, parallel_tool_calls, user, stream,
                    service_tier, safety_identifier, prompt_cache_key, prompt_cache_retention,
                    max_output_tokens and the policy's unified parameters (reasoning_effort,
                    include_reasoning, include_thoughts, thinking_level, thinking_budget)
  translated:       input, instructions (a leading system message), tools, tool_choice,
                    text.format (response_format), text.verbosity (verbosity),
                    reasoning.effort (reasoning_effort, unless the policy already set it),
                    include "message.output_text.logprobs" (logprobs) with top_logprobs
  dropped:          other include values, truncation, stream_options, max_tool_calls (it only
                    limits built-in tools, which are refused anyway), reasoning.summary,
                    store false, background false, tool_choice and parallel_tool_calls
                    when there are no tools, any unknown field, and metadata: it is
                    echoed in the Response, but OpenAI chat refuses it unless store is true
                    ("The 'metadata' parameter is only allowed when 'store' is enabled")
  400:              previous_response_id, conversation, prompt (server-side state),
                    store true, background true, built-in tools, non-function tool_choice,
                    item_reference and built-in tool items in input, images by file_id,
                    files by file_url
"""

from __future__ import annotations

from typing import Any

from gateway.errors import BadRequest
from gateway.translate.shapes import ChatMessage, ContentPart, ToolCall
from gateway.translate.unified import CARRIED

_RESPONSES_KEPT = (
    "model",
    "temperature",
    "top_p",
    "parallel_tool_calls",
    "user",
    "stream",
    "service_tier",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
    *CARRIED,  # the policy's unified parameters
    "include_reasoning",
)
_STATEFUL = ("previous_response_id", "conversation", "prompt")
_TEXT_PARTS = ("input_text", "output_text", "text")


def _bad(message: str, param: str) -> BadRequest:
    return BadRequest(message, param=param)


# ---------------------------------------------------------------- Responses -> chat


def responses_request_to_chat(body: dict[str, Any]) -> dict[str, Any]:
    """A Responses create body -> the internal chat request."""
    for field in _STATEFUL:
        if body.get(field) is not None:
            raise _bad(
                f"'{field}' needs state stored by the OpenAI Responses API, which this model "
                "does not use; send the whole conversation in 'input' instead.",
                field,
            )
    for field in ("store", "background"):
        if body.get(field) is True:
            raise _bad(
                f"'{field}: true' is not supported for this model; omit it or send false.", field
            )

    out: dict[str, Any] = {k: body[k] for k in _RESPONSES_KEPT if body.get(k) is not None}
    out["messages"] = _input_to_messages(body.get("input"), body.get("instructions"))

    choice = body.get("tool_choice")
    choice = None if choice is None else _tool_choice_to_chat(choice)
    if body.get("tools"):
        out["tools"] = [_tool_to_chat(tool) for tool in body["tools"]]
        if choice is not None:
            out["tool_choice"] = choice
    else:
        # Responses accepts these with no tools; OpenAI chat refuses them ("only allowed
        # when 'tools' are specified"), and without tools they mean nothing anyway.
        out.pop("parallel_tool_calls", None)

    text = body.get("text") or {}
    if text.get("format") is not None:
        out["response_format"] = _format_to_chat(text["format"])
    if text.get("verbosity") is not None:
        out["verbosity"] = text["verbosity"]

    effort = (body.get("reasoning") or {}).get("effort")
    if effort is not None and "reasoning_effort" not in out:
        out["reasoning_effort"] = effort

    # Responses returns log probabilities only when `include` asks for them.
    if "message.output_text.logprobs" in (body.get("include") or ()):
        out["logprobs"] = True
        if body.get("top_logprobs"):
            out["top_logprobs"] = body["top_logprobs"]

    if out.get("stream"):
        out["stream_options"] = {"include_usage": True}
    return out


def _input_to_messages(items: Any, instructions: Any) -> list[ChatMessage]:
    messages: list[ChatMessage] = []
    if instructions:
        messages.append({"role": "system", "content": instructions})
    if items is None:
        raise _bad("'input' is required.", "input")
    if isinstance(items, str):
        messages.append({"role": "user", "content": items})
        return messages
    if not isinstance(items, list):
        raise _bad("'input' must be a string or a list of items.", "input")
    for item in items:
        if not isinstance(item, dict):
            raise _bad("Every 'input' item must be an object.", "input")
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            messages.append(_message_to_chat(item))
        elif kind == "function_call":
            _append_tool_call(messages, item)
        elif kind == "function_call_output":
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": _required(item, "call_id"),
                    "content": _tool_output_to_chat(item.get("output")),
                }
            )
        elif kind == "reasoning":
            # Reasoning items only mean something to the model that wrote them.
            continue
        else:
            raise _bad(f"'input' items of type '{kind}' cannot be sent to this model.", "input")
    return messages


def _required(item: dict[str, Any], key: str) -> Any:
    value = item.get(key)
    if value is None:
        raise _bad(f"An 'input' item of type '{item.get('type')}' is missing '{key}'.", "input")
    return value


def _message_to_chat(item: dict[str, Any]) -> ChatMessage:
    role = item.get("role")
    content = item.get("content")
    if role == "assistant":
        return _assistant_to_chat(content)
    if role not in ("user", "system", "developer"):
        raise _bad(f"Unknown message role '{role}' in 'input'.", "input")
    # `developer` is what `system` is called for newer OpenAI models; `system` is the
    # spelling every chat upstream (Gemini's included) accepts.
    chat_role = "user" if role == "user" else "system"
    if isinstance(content, str):
        return {"role": chat_role, "content": content}
    if not isinstance(content, list):
        raise _bad("Message 'content' must be a string or a list of parts.", "input")
    return {"role": chat_role, "content": [_part_to_chat(part) for part in content]}


def _assistant_to_chat(content: Any) -> ChatMessage:
    if isinstance(content, str) or content is None:
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    refusals: list[str] = []
    for part in content:
        if part.get("type") in _TEXT_PARTS:
            texts.append(part.get("text") or "")
        elif part.get("type") == "refusal":
            refusals.append(part.get("refusal") or "")
        else:
            raise _bad(
                f"Assistant content parts of type '{part.get('type')}' are not supported.", "input"
            )
    message: ChatMessage = {"role": "assistant", "content": "".join(texts) if texts else None}
    if refusals:
        message["refusal"] = "".join(refusals)
    return message


def _append_tool_call(messages: list[ChatMessage], item: dict[str, Any]) -> None:
    call: ToolCall = {
        "id": _required(item, "call_id"),
        "type": "function",
        "function": {"name": _required(item, "name"), "arguments": item.get("arguments") or ""},
    }
    # A Responses turn is a message item followed by call items; chat carries the whole
    # turn as one assistant message, and strict upstreams reject split turns.
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)
    else:
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _part_to_chat(part: Any) -> ContentPart:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in _TEXT_PARTS:
        return {"type": "text", "text": part.get("text") or ""}
    if kind == "input_image":
        if not part.get("image_url"):
            raise _bad(
                "Images given by 'file_id' cannot be sent to this model; use 'image_url'.", "input"
            )
        image: dict[str, Any] = {"url": part["image_url"]}
        if part.get("detail"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        if part.get("file_url"):
            raise _bad(
                "Files given by 'file_url' cannot be sent to this model; use 'file_data'.", "input"
            )
        file = {k: part[k] for k in ("file_data", "file_id", "filename") if part.get(k) is not None}
        return {"type": "file", "file": file}
    if kind == "input_audio":
        return {"type": "input_audio", "input_audio": part.get("input_audio")}
    raise _bad(f"Content parts of type '{kind}' cannot be sent to this model.", "input")


def _tool_output_to_chat(output: Any) -> str:
    if isinstance(output, str):
        return output
    if output is None:
        return ""
    texts: list[str] = []
    for part in output:
        if not isinstance(part, dict) or part.get("type") not in _TEXT_PARTS:
            raise _bad(
                "Only text 'function_call_output' output can be sent to this model.", "input"
            )
        texts.append(part.get("text") or "")
    return "".join(texts)


def _tool_to_chat(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type") != "function":
        raise _bad(
            f"Built-in tool '{tool.get('type')}' is only available on the OpenAI Responses API; "
            "this model takes function tools only.",
            "tools",
        )
    function = {
        k: tool[k]
        for k in ("name", "description", "parameters", "strict")
        if tool.get(k) is not None
    }
    return {"type": "function", "function": function}


def _tool_choice_to_chat(choice: Any) -> Any:
    if isinstance(choice, str):
        return choice
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    if kind == "allowed_tools":
        tools = []
        for tool in choice.get("tools") or []:
            if tool.get("type") != "function":
                raise _bad("Only function tools can be allowed for this model.", "tool_choice")
            tools.append({"type": "function", "function": {"name": tool.get("name")}})
        return {
            "type": "allowed_tools",
            "allowed_tools": {"mode": choice.get("mode"), "tools": tools},
        }
    raise _bad(f"tool_choice of type '{kind}' cannot be sent to this model.", "tool_choice")


def _format_to_chat(fmt: dict[str, Any]) -> dict[str, Any]:
    kind = fmt.get("type")
    if kind == "json_schema":
        schema = {
            k: fmt[k] for k in ("name", "schema", "strict", "description") if fmt.get(k) is not None
        }
        return {"type": "json_schema", "json_schema": schema}
    if kind in ("json_object", "text"):
        return {"type": kind}
    raise _bad(f"text.format of type '{kind}' is not supported.", "text")
