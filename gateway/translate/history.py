"""A conversation's history made fit for an OpenAI upstream.

A conversation that ran on a Gemini model carries what only Gemini takes: tool call ids
with the thought signature folded in (`<id>__thsig_<token>`, often over 100 characters:
OpenAI refuses chat `tool_calls[].id` / `tool_call_id` over 40 and Responses `call_id`
over 64), `extra_content` on tool calls and messages, and the gateway's own
`reasoning_content` on assistant messages (OpenAI refuses unknown message fields). When
such a history goes to OpenAI (the client switched models, or a fallback took over),
the ids go back to the short ones Gemini or the gateway gave (the same decoding for a
call and its result, so they still match) and the Gemini-only fields are dropped.

A history with none of that is returned as it is: nothing is copied on the hot path.
"""

from __future__ import annotations

from typing import Any

from gateway.translate.gemini_compat import SIGNATURE_MARK, decode_tool_call_id

_GEMINI_ONLY = ("extra_content", "reasoning_content")


def _short(value: Any) -> Any:
    if isinstance(value, str) and SIGNATURE_MARK in value:
        return decode_tool_call_id(value)[0]
    return value


def _call(call: Any) -> Any:
    if not isinstance(call, dict):
        return call
    out = {k: v for k, v in call.items() if k != "extra_content"}
    if "id" in call:
        out["id"] = _short(call["id"])
    return out


def _needs_change(msg: dict[str, Any]) -> bool:
    # Plain loops and `in` tests: this runs on every message of every OpenAI chat call.
    for key in _GEMINI_ONLY:
        if key in msg:
            return True
    if "tool_call_id" in msg and SIGNATURE_MARK in str(msg["tool_call_id"] or ""):
        return True
    if "tool_calls" not in msg:
        return False
    calls = msg.get("tool_calls")
    return isinstance(calls, list) and any(
        isinstance(c, dict) and ("extra_content" in c or SIGNATURE_MARK in str(c.get("id") or ""))
        for c in calls
    )


def chat_messages_for_openai(messages: Any) -> Any:
    """Chat `messages` as OpenAI's chat API takes them."""
    if not isinstance(messages, list):
        return messages
    for m in messages:
        if isinstance(m, dict) and _needs_change(m):
            break
    else:
        return messages
    out = []
    for msg in messages:
        if not isinstance(msg, dict) or not _needs_change(msg):
            out.append(msg)
            continue
        fixed = {k: v for k, v in msg.items() if k not in _GEMINI_ONLY}
        if "tool_call_id" in msg:
            fixed["tool_call_id"] = _short(msg["tool_call_id"])
        if isinstance(msg.get("tool_calls"), list):
            fixed["tool_calls"] = [_call(c) for c in msg["tool_calls"]]
        out.append(fixed)
    return out


def short_call_id(call_id: Any) -> Any:
    """A tool call id as an OpenAI upstream takes it (Responses `call_id` too)."""
    return _short(call_id)


def responses_input_for_openai(items: Any) -> Any:
    """Responses `input` items as OpenAI's Responses API takes them: the call ids (and
    the item ids the gateway derived from them) of function calls and their outputs."""
    if not isinstance(items, list):
        return items
    if not any(
        isinstance(i, dict) and SIGNATURE_MARK in str(i.get("call_id") or "") for i in items
    ):
        return items
    out = []
    for item in items:
        if isinstance(item, dict) and SIGNATURE_MARK in str(item.get("call_id") or ""):
            item = {**item, "call_id": _short(item["call_id"])}
            if SIGNATURE_MARK in str(item.get("id") or ""):
                item["id"] = _short(item["id"])
        out.append(item)
    return out
