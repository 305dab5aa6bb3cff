"""The shape of a client's body: a clear 400 for a missing field or a wrong type.

Only what the gateway reads or translates is checked, and only when present (null means
"not set" for an optional field); everything else is the upstream's to judge. Checks are
a type test per present key plus one pass over the messages or input items, so they
stay cheap on the hot path. What passes here never crashes a translator.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import BadRequest
from gateway.proxy.limits import check_items
from gateway.types import ClientAPI

_NUMBER = (int, float)
_TYPES: dict[str, tuple[type, ...]] = {
    "number": _NUMBER,
    "integer": (int,),
    "string": (str,),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}

# Optional top-level fields: name -> accepted JSON types.
_COMMON = {
    "stream": ("boolean",),
    "stream_options": ("object",),
    "temperature": ("number",),
    "top_p": ("number",),
    "tools": ("array",),
    "tool_choice": ("string", "object"),
    "parallel_tool_calls": ("boolean",),
    "metadata": ("object",),
    "user": ("string",),
    "store": ("boolean",),
    "service_tier": ("string",),
    "reasoning_effort": ("string",),
    "seed": ("integer",),
    "top_logprobs": ("integer",),
}
FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    "chat": {
        **_COMMON,
        "max_tokens": ("integer",),
        "max_completion_tokens": ("integer",),
        "n": ("integer",),
        "stop": ("string", "array"),
        "response_format": ("object",),
        "logit_bias": ("object",),
        "logprobs": ("boolean",),
        "presence_penalty": ("number",),
        "frequency_penalty": ("number",),
        "modalities": ("array",),
        "audio": ("object",),
        "prediction": ("object",),
    },
    "responses": {
        **_COMMON,
        "instructions": ("string",),
        "max_output_tokens": ("integer",),
        "reasoning": ("object",),
        "text": ("object",),
        "include": ("array",),
        "previous_response_id": ("string",),
        "truncation": ("string",),
        "background": ("boolean",),
    },
    "embeddings": {
        "encoding_format": ("string",),
        "dimensions": ("integer",),
        "user": ("string",),
    },
}
_TEXT_PARTS = frozenset({"text", "input_text", "output_text", "refusal"})


def _is(value: Any, kinds: tuple[str, ...]) -> bool:
    if isinstance(value, bool) and "boolean" not in kinds:
        return False  # JSON true is not a number
    return any(isinstance(value, _TYPES[kind]) for kind in kinds)


def _bad(where: str, what: str) -> BadRequest:
    return BadRequest(f"Invalid '{where}': {what}.", param=where, code="invalid_type")


def check_body(client_api: ClientAPI, body: dict[str, Any]) -> None:
    if client_api == "chat":
        _messages(body.get("messages"))
    elif client_api == "responses":
        _input(body.get("input"))
    else:
        _embedding_input(body.get("input"))
    check_items(client_api, body)
    fields = FIELDS[client_api]
    for name, value in body.items():  # a body has a handful of keys; the table has dozens
        kinds = fields.get(name)
        if kinds is not None and value is not None and not _is(value, kinds):
            raise _bad(name, f"expected {' or '.join(kinds)}")
    for i, tool in enumerate(body.get("tools") or ()):
        _tool(client_api, tool, f"tools[{i}]")
    stop = body.get("stop")
    if isinstance(stop, list) and not all(isinstance(s, str) for s in stop):
        raise _bad("stop", "expected a string or an array of strings")


def _tool(client_api: ClientAPI, tool: Any, where: str) -> None:
    if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
        raise _bad(where, "expected an object with a 'type'")
    if tool["type"] != "function":
        return  # built-in and custom tools: the upstream's to judge
    # Chat nests the definition under "function"; Responses has it flat.
    spec = tool.get("function") if client_api == "chat" else tool
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        name = "function.name" if client_api == "chat" else "name"
        raise _bad(f"{where}.{name}", "a function tool needs a name")


def _messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise BadRequest(
            "'messages' must be a non-empty array of messages.",
            param="messages",
            code="invalid_type" if messages is not None else "missing_required_parameter",
        )
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequest(
                f"{where} must be an object with a 'role'.", param=where, code="invalid_type"
            )
        _content(message.get("content"), f"{where}.content")
        calls = message.get("tool_calls")
        if calls is not None and not (
            isinstance(calls, list)
            and all(isinstance(c, dict) and isinstance(c.get("function"), dict) for c in calls)
        ):
            raise _bad(
                f"{where}.tool_calls", "expected an array of objects with a 'function' object"
            )


def _content(content: Any, where: str) -> None:
    if content is None or isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _bad(where, "expected a string or an array of content parts")
    for j, part in enumerate(content):
        spot = f"{where}[{j}]"
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise _bad(spot, "expected an object with a 'type'")
        kind = part["type"]
        if kind in _TEXT_PARTS and not isinstance(part.get("text", part.get("refusal")), str):
            raise _bad(f"{spot}.text", "expected a string")
        if kind == "image_url":
            image = part.get("image_url")
            if not (
                isinstance(image, str)
                or (isinstance(image, dict) and isinstance(image.get("url"), str))
            ):
                raise _bad(f"{spot}.image_url", "expected a URL string or an object with a 'url'")


def _input(value: Any) -> None:
    if isinstance(value, str):
        return
    if not isinstance(value, list):
        raise BadRequest(
            "'input' must be a string or an array of input items.",
            param="input",
            code="invalid_type" if value is not None else "missing_required_parameter",
        )
    for i, item in enumerate(value):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise _bad(where, "expected an input item object")
        kind = item.get("type")
        if kind is not None and not isinstance(kind, str):
            raise _bad(f"{where}.type", "expected a string")
        if kind in (None, "message"):
            if not isinstance(item.get("role"), str):
                raise _bad(f"{where}.role", "a message needs a 'role' string")
            _content(item.get("content"), f"{where}.content")
        elif kind == "function_call":
            for name in ("name", "arguments", "call_id"):
                if not isinstance(item.get(name), str):
                    raise _bad(f"{where}.{name}", "expected a string")
        elif kind == "function_call_output":
            if not isinstance(item.get("call_id"), str):
                raise _bad(f"{where}.call_id", "expected a string")
            output = item.get("output")
            if not isinstance(output, str):
                _content(output, f"{where}.output")


def _embedding_input(value: Any) -> None:
    def tokens(v: Any) -> bool:
        return (
            isinstance(v, list)
            and bool(v)
            and all(isinstance(t, int) and not isinstance(t, bool) for t in v)
        )

    ok = (
        isinstance(value, str)
        or tokens(value)
        or (
            isinstance(value, list)
            and bool(value)
            and (all(isinstance(v, str) for v in value) or all(tokens(v) for v in value))
        )
    )
    if not ok:
        raise BadRequest(
            "'input' must be a string, an array of strings, an array of token ids, "
            "or an array of token-id arrays.",
            param="input",
            code="invalid_type" if value is not None else "missing_required_parameter",
        )
