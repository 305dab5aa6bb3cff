"""Gemini's OpenAI-compatible surface (`{base}/openai/chat/completions`) and the thought
signature conventions shared with the native translators.

Thought signatures. Gemini 3 attaches `thoughtSignature` to parts (always to the first
functionCall of a step) and answers 400 when the next turn does not send them back.
OpenAI clients echo back only the tool call `id`, so the signature rides inside it:
`<base id>__thsig_<token>` (`encode_tool_call_id`), using only [A-Za-z0-9_-] so strict
clients keep it. The tool call also carries `extra_content.google.thought_signature`,
as Google's compat surface does itself; on the way back either is accepted, the
explicit field first.

The compat surface differs from OpenAI in three ways we repair here:
- thinking settings go in `extra_body.google.thinking_config` (on the wire: a top-level
  `extra_body` object) and must not be combined with `reasoning_effort`;
- with `include_thoughts` the thought summary arrives inline in `message.content`
  wrapped in `<thought>...</thought>`: we move it to `reasoning_content` (or drop it);
- `completion_tokens` counts the visible answer only while `total_tokens` includes the
  thoughts: we make `completion_tokens` include reasoning, as OpenAI's does.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from gateway.accounting import usage_from_gemini_compat
from gateway.translate.ids import bare_model
from gateway.translate.unified import CARRIED, EFFORT

# --------------------------------------------------------------------------- signatures

SIGNATURE_MARK = "__thsig_"
_STD_B64 = re.compile(r"^[A-Za-z0-9+/]*(={0,2})$")


def encode_tool_call_id(base: str, signature: str | None) -> str:
    """Append a thought signature to a tool call id, reversibly.

    Token = a kind character then the payload. '0'/'1'/'2': standard base64 with that
    many '=' removed and '+/' mapped to '-_' (the normal case, barely longer than the
    signature itself); 'u': base64url of the UTF-8 text (anything else). Both are exact.
    """
    if not signature:
        return base
    match = _STD_B64.match(signature)
    if match:
        body = signature[: len(signature) - len(match.group(1))]
        token = str(len(match.group(1))) + body.replace("+", "-").replace("/", "_")
    else:
        token = "u" + base64.urlsafe_b64encode(signature.encode()).decode().rstrip("=")
    return base + SIGNATURE_MARK + token


def decode_tool_call_id(call_id: str) -> tuple[str, str | None]:
    """(base id, signature or None); an id we did not encode comes back unchanged."""
    base, mark, token = call_id.partition(SIGNATURE_MARK)
    if not mark or not token:
        return call_id, None
    kind, payload = token[0], token[1:]
    if kind in "012":
        return base, payload.replace("-", "+").replace("_", "/") + "=" * int(kind)
    if kind == "u":
        try:
            return base, base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError):
            pass
    return call_id, None


def google_signature(item: dict[str, Any]) -> str | None:
    """`extra_content.google.thought_signature` of a message or tool call, if any."""
    extra = item.get("extra_content")
    google = extra.get("google") if isinstance(extra, dict) else None
    sig = google.get("thought_signature") if isinstance(google, dict) else None
    return sig if isinstance(sig, str) and sig else None


def signature_extra(signature: str) -> dict[str, Any]:
    return {"google": {"thought_signature": signature}}


def _sign_tool_call(call: dict[str, Any]) -> None:
    """Fold the compat surface's extra_content signature into the tool call id."""
    signature = google_signature(call)
    call_id = call.get("id")
    if signature and isinstance(call_id, str) and SIGNATURE_MARK not in call_id:
        call["id"] = encode_tool_call_id(call_id, signature)


# --------------------------------------------------------------------------- request

# The policy's unified names: rendered below, never sent as they are.
_UNIFIED = tuple(
    name for name in CARRIED if name != EFFORT
)  # the compat surface takes an effort as is


def compat_model_id(model: str) -> str:
    """Google's compat docs name models bare (`gemini-2.5-flash`); the registry may hold
    the native resource name (`models/gemini-2.5-flash`), so the prefix is dropped."""
    return bare_model(model)


def _restore_messages(messages: list[Any]) -> list[Any]:
    out = []
    for msg in messages:
        if not isinstance(msg, dict):
            out.append(msg)
            continue
        msg = {k: v for k, v in msg.items() if k != "reasoning_content"}  # our extension
        if msg.get("role") == "assistant" and isinstance(msg.get("tool_calls"), list):
            calls = []
            for call in msg["tool_calls"]:
                if isinstance(call, dict) and isinstance(call.get("id"), str):
                    base, signature = decode_tool_call_id(call["id"])
                    call = {**call, "id": base}
                    signature = google_signature(call) or signature
                    if signature:
                        call["extra_content"] = signature_extra(signature)
                calls.append(call)
            msg["tool_calls"] = calls
        elif msg.get("role") == "tool" and isinstance(msg.get("tool_call_id"), str):
            msg["tool_call_id"] = decode_tool_call_id(msg["tool_call_id"])[0]
        out.append(msg)
    return out


def compat_request(body: dict[str, Any]) -> dict[str, Any]:
    """The internal chat request as a body for `{base}/openai/chat/completions`."""
    out = {k: v for k, v in body.items() if k not in _UNIFIED and k != "max_completion_tokens"}
    if isinstance(out.get("model"), str):
        out["model"] = compat_model_id(out["model"])
    if isinstance(out.get("messages"), list):
        out["messages"] = _restore_messages(out["messages"])
    if body.get("max_output_tokens") is not None:
        # `max_tokens` is the field every version of Google's compat layer documents.
        out["max_tokens"] = body["max_output_tokens"]
    thinking: dict[str, Any] = {}
    if body.get("thinking_level") is not None:
        thinking["thinking_level"] = str(body["thinking_level"]).lower()
    elif body.get("thinking_budget") is not None:
        thinking["thinking_budget"] = int(body["thinking_budget"])
    if body.get("include_thoughts"):
        thinking["include_thoughts"] = True
    if "thinking_level" in thinking or "thinking_budget" in thinking:
        out.pop("reasoning_effort", None)  # they overlap; Google rejects both together
    if thinking:
        extra = dict(out.get("extra_body") or {})
        google = dict(extra.get("google") or {})
        google["thinking_config"] = {**(google.get("thinking_config") or {}), **thinking}
        extra["google"] = google
        out["extra_body"] = extra
    return out


# --------------------------------------------------------------------------- response

OPEN_TAG, CLOSE_TAG = "<thought>", "</thought>"
_THOUGHT_BLOCK = re.compile(r"<thought>(.*?)(?:</thought>|\Z)", re.DOTALL)


def split_thoughts(content: str) -> tuple[str, str]:
    """(answer, thoughts): every <thought> block removed from the text; an unterminated
    block (cut by max tokens) runs to the end."""
    thoughts = [m.group(1).strip() for m in _THOUGHT_BLOCK.finditer(content)]
    if not thoughts:
        return content, ""
    return _THOUGHT_BLOCK.sub("", content).strip(), "\n\n".join(t for t in thoughts if t)


def fix_usage(usage: dict[str, Any]) -> dict[str, Any]:
    """Make completion_tokens include reasoning (prompt + completion = total again), as
    gateway.accounting reads this surface's usage."""
    parsed = usage_from_gemini_compat(usage)
    assert parsed is not None  # a dict always parses
    details = dict(usage.get("completion_tokens_details") or {})
    details["reasoning_tokens"] = parsed.reasoning
    return {
        **usage,
        "completion_tokens": parsed.output,
        "total_tokens": parsed.input + parsed.output,
        "completion_tokens_details": details,
    }


def compat_response(completion: dict[str, Any], include_thoughts: bool) -> dict[str, Any]:
    """A compat `chat.completion` made OpenAI-shaped (see the module docstring)."""
    out = dict(completion)
    choices = []
    for choice in completion.get("choices") or []:
        message = dict(choice.get("message") or {})
        if isinstance(message.get("content"), str) and OPEN_TAG in message["content"]:
            answer, thoughts = split_thoughts(message["content"])
            message["content"] = answer
            if include_thoughts and thoughts:
                message["reasoning_content"] = thoughts
        if isinstance(message.get("tool_calls"), list):
            message["tool_calls"] = [dict(c) for c in message["tool_calls"]]
            for call in message["tool_calls"]:
                _sign_tool_call(call)
        # Fields OpenAI's schema requires (nullable) that the compat surface leaves out.
        message.setdefault("refusal", None)
        choices.append({"logprobs": None, **choice, "message": message})
    out["choices"] = choices
    if isinstance(completion.get("usage"), dict):
        out["usage"] = fix_usage(completion["usage"])
    return out


# --------------------------------------------------------------------------- stream


def _partial_tag(text: str, tag: str) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of `tag`."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


class _ThoughtSplitter:
    """Separates <thought> blocks from answer text fed in arbitrary pieces. It holds back
    only a possible partial tag at the end of a piece, never more."""

    __slots__ = ("_held", "_in_thought", "_trim")

    def __init__(self) -> None:
        self._held = ""
        self._in_thought = False
        self._trim = False  # strip the whitespace that follows a tag

    def feed(self, text: str) -> tuple[str, str]:
        buffer, self._held = self._held + text, ""
        answer: list[str] = []
        thought: list[str] = []
        while buffer:
            tag = CLOSE_TAG if self._in_thought else OPEN_TAG
            pos = buffer.find(tag)
            if pos < 0:
                keep = _partial_tag(buffer, tag)
                piece, self._held = buffer[: len(buffer) - keep], buffer[len(buffer) - keep :]
                self._emit(piece, thought if self._in_thought else answer)
                break
            self._emit(buffer[:pos], thought if self._in_thought else answer)
            buffer = buffer[pos + len(tag) :]
            self._in_thought, self._trim = not self._in_thought, True
        return "".join(answer), "".join(thought)

    def flush(self) -> tuple[str, str]:
        held, self._held = self._held, ""
        return ("", held) if self._in_thought else (held, "")

    def _emit(self, piece: str, into: list[str]) -> None:
        if self._trim:
            piece = piece.lstrip()
            self._trim = not piece
        if piece:
            into.append(piece)


class CompatStreamFixer:
    """Repairs compat stream chunks one by one: thoughts, signatures in ids, usage."""

    def __init__(self, include_thoughts: bool) -> None:
        self.include_thoughts = include_thoughts
        self._splitters: dict[int, _ThoughtSplitter] = {}

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        out = dict(chunk)
        choices = []
        for choice in chunk.get("choices") or []:
            delta = dict(choice.get("delta") or {})
            splitter = self._splitters.setdefault(int(choice.get("index") or 0), _ThoughtSplitter())
            answer, thought = "", ""
            if isinstance(delta.get("content"), str):
                answer, thought = splitter.feed(delta.pop("content"))
            if choice.get("finish_reason"):  # last chunk of this choice: release held text
                rest_answer, rest_thought = splitter.flush()
                answer, thought = answer + rest_answer, thought + rest_thought
            if answer:
                delta["content"] = answer
            if thought and self.include_thoughts:
                delta["reasoning_content"] = delta.get("reasoning_content", "") + thought
            if isinstance(delta.get("tool_calls"), list):
                delta["tool_calls"] = [dict(c) for c in delta["tool_calls"]]
                for call in delta["tool_calls"]:
                    _sign_tool_call(call)
            choices.append({"finish_reason": None, **choice, "delta": delta})
        out["choices"] = choices
        if isinstance(chunk.get("usage"), dict):
            out["usage"] = fix_usage(chunk["usage"])
        empty = all(not c["delta"] and not c.get("finish_reason") for c in choices)
        if choices and empty and not out.get("usage"):
            return []  # the chunk carried only (dropped) thought text or a held partial tag
        return [out]
