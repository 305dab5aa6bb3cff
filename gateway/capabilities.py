"""What a request needs from a model, checked against what its registry entry declares.

A pure check, run on each model's policy result before anything is sent upstream: a
parameter the policy dropped needs nothing. Entries that declare no `capabilities` list
are not checked (nor the llm-adapter mapping form, which holds settings, not flags).
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from gateway.errors import BadRequest
from gateway.policy import PolicyResult
from gateway.registry.snapshot import Model
from gateway.types import ClientAPI

_IMAGE_PARTS = frozenset({"image_url", "input_image", "image"})
_AUDIO_PARTS = frozenset({"input_audio", "audio"})
_MEDIA_PARTS = _IMAGE_PARTS | _AUDIO_PARTS
_JSON_FORMATS = frozenset({"json_schema", "json_object"})

# capability -> (what the request does, the parameter that asks for it)
_WHAT = {
    "tools": ("calls tools", "tools"),
    "vision": ("has image input", "messages"),
    "audio": ("has audio input", "messages"),
    "json_mode": ("asks for a JSON response_format", "response_format"),
    "reasoning": ("sets a reasoning effort", "reasoning_effort"),
}


def needed(client_api: ClientAPI, result: PolicyResult) -> tuple[str, ...]:
    """The capability flags this request needs, in a fixed order."""
    return tuple(_needs(client_api, result, (), first=False))


def _needs(
    client_api: ClientAPI, result: PolicyResult, declared: Container[str], *, first: bool
) -> list[str]:
    """The capabilities the request needs that are not in `declared`, in the fixed order
    (only the first one when `first`). A need is looked at only when it is not declared:
    on the hot path (lacking) the request is read no further than it must be."""
    if client_api == "embeddings":
        return []
    params = result.params
    out: list[str] = []
    if "tools" not in declared and _uses_tools(params):
        out.append("tools")
        if first:
            return out
    vision, audio = "vision" not in declared, "audio" not in declared
    if vision or audio:
        kinds = _part_kinds(params.get("messages") if client_api == "chat" else params.get("input"))
        for name, wanted, parts in (
            ("vision", vision, _IMAGE_PARTS),
            ("audio", audio, _AUDIO_PARTS),
        ):
            if wanted and kinds & parts:
                out.append(name)
                if first:
                    return out
    if "json_mode" not in declared and _json_format(client_api, params):
        out.append("json_mode")
        if first:
            return out
    if "reasoning" not in declared and _asks_reasoning(result):
        out.append("reasoning")
    return out


def _asks_reasoning(result: PolicyResult) -> bool:
    return (
        result.effort_asked
        and result.effort not in (None, "none")
        and "reasoning_effort" not in result.dropped
    )


def missing(model: Model, needs: tuple[str, ...]) -> str | None:
    """The first needed capability the model's entry does not declare; None when all are
    declared or the entry has no capabilities list to check."""
    declared = model.entry.capabilities
    if not declared or isinstance(declared, dict):
        return None
    for name in needs:
        if name not in declared:
            return name
    return None


def lacking(client_api: ClientAPI, model: Model, result: PolicyResult) -> str | None:
    """The first capability the request needs that the model does not declare. Free for a
    model without a capabilities list: the request is not even looked at."""
    declared = model.entry.capabilities
    if not declared or isinstance(declared, dict):
        return None
    found = _needs(client_api, result, declared, first=True)
    return found[0] if found else None


def check(client_api: ClientAPI, model: Model, result: PolicyResult) -> None:
    """Raise 400 model_capability_missing when the model lacks what the request needs."""
    name = lacking(client_api, model, result)
    if name is not None:
        raise capability_error(model, name)


def capability_error(model: Model, name: str) -> BadRequest:
    what, param = _WHAT.get(name, (f"needs {name}", None))
    return BadRequest(
        f"The request {what}, but model '{model.key}' does not declare the '{name}' capability.",
        param=param,
        code="model_capability_missing",
    )


def _uses_tools(params: dict[str, Any]) -> bool:
    tools = params.get("tools") or params.get("functions")
    if isinstance(tools, list) and tools:
        return True
    choice = params.get("tool_choice", params.get("function_call"))
    return choice is not None and choice != "none"


def _part_kinds(items: Any) -> set[str]:
    """The `type`s of the content parts in chat messages or Responses input items."""
    kinds: set[str] = set()
    if not isinstance(items, list):
        return kinds
    for item in items:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if isinstance(kind, str) and kind in _MEDIA_PARTS:
            kinds.add(kind)
        content = item.get("content")
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("type"), str):
                    kinds.add(part["type"])
    return kinds


def _json_format(client_api: ClientAPI, params: dict[str, Any]) -> bool:
    if client_api == "chat":
        fmt = params.get("response_format")
    else:
        text = params.get("text")
        fmt = text.get("format") if isinstance(text, dict) else None
    return isinstance(fmt, dict) and fmt.get("type") in _JSON_FORMATS
