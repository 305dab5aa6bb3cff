"""Gemini responses -> the internal chat shape: whole (`generate_content_to_chat`) and
streamed (`GeminiToChatStream`, fed one `data:` object of `:streamGenerateContent?alt=sse`
at a time). `gateway.translate.gemini` re-exports the whole-response functions.

Gemini streams candidates in pieces: each chunk holds new parts (text, thought summary
parts with `thought: true`, whole functionCall parts), the last one per candidate holds
`finishReason`, and every chunk repeats the running `usageMetadata`.
"""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

import orjson

from gateway.accounting import chat_usage, usage_from_gemini
from gateway.errors import from_upstream
from gateway.translate.chunks import chat_choice, chat_chunk
from gateway.translate.gemini_compat import encode_tool_call_id, signature_extra
from gateway.translate.shapes import ChatMessage, ToolCall
from gateway.translate.sse import truncated

# Finish reasons that mean Gemini withheld or cut content for policy reasons.
_FILTERED = {
    "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION",
}  # fmt: skip


def finish_reason(reason: str | None, has_tool_calls: bool) -> str:
    """Gemini's finishReason as OpenAI's; Gemini says STOP after function calls too."""
    if reason == "MAX_TOKENS":
        return "length"
    if reason in _FILTERED:
        return "content_filter"
    return "tool_calls" if has_tool_calls else "stop"


def gemini_usage_to_chat(meta: dict[str, Any] | None) -> dict[str, Any]:
    """usageMetadata as chat usage, as gateway.accounting reads it (the one place that does)."""
    return chat_usage(usage_from_gemini(meta))


def new_call_id() -> str:
    return "call_" + secrets.token_hex(12)


def gemini_tool_call(part: dict[str, Any]) -> ToolCall:
    """A functionCall part as a chat tool call, with its signature folded into the id.
    Gemini's own call id is kept when it sends one, so its functionResponse can match."""
    call = part["functionCall"]
    signature = part.get("thoughtSignature")
    out: ToolCall = {
        "id": encode_tool_call_id(str(call.get("id") or new_call_id()), signature),
        "type": "function",
        "function": {
            "name": call.get("name", ""),
            "arguments": orjson.dumps(call.get("args") or {}).decode(),
        },
    }
    if signature:
        out["extra_content"] = signature_extra(signature)
    return out


def split_parts(parts: list[dict[str, Any]]) -> tuple[str, str, list[ToolCall], str | None]:
    """(answer text, thought text, tool calls, last signature seen on a non-call part)."""
    text: list[str] = []
    thoughts: list[str] = []
    calls: list[ToolCall] = []
    signature = None
    for part in parts:
        if "functionCall" in part:
            calls.append(gemini_tool_call(part))
            continue
        if part.get("thoughtSignature"):
            signature = part["thoughtSignature"]
        if isinstance(part.get("text"), str):
            (thoughts if part.get("thought") else text).append(part["text"])
    return "".join(text), "".join(thoughts), calls, signature


def _logprob(entry: dict[str, Any]) -> dict[str, Any]:
    token = str(entry.get("token", ""))
    return {
        "token": token,
        "logprob": entry.get("logProbability", 0.0),
        "bytes": list(token.encode()),
    }


def _logprobs(candidate: dict[str, Any]) -> dict[str, Any] | None:
    """logprobsResult (chosenCandidates + topCandidates per step) as chat logprobs."""
    result = candidate.get("logprobsResult")
    if not isinstance(result, dict):
        return None
    tops = result.get("topCandidates") or []
    content = []
    for step, chosen in enumerate(result.get("chosenCandidates") or []):
        alternatives = (tops[step].get("candidates") or []) if step < len(tops) else []
        content.append({**_logprob(chosen), "top_logprobs": [_logprob(a) for a in alternatives]})
    return {"content": content, "refusal": None}


def _chat_id(resp: dict[str, Any]) -> str:
    return "chatcmpl-" + str(resp.get("responseId") or uuid.uuid4().hex)


def generate_content_to_chat(
    resp: dict[str, Any], model: str, include_thoughts: bool
) -> dict[str, Any]:
    """A GenerateContentResponse as a `chat.completion`, one choice per candidate."""
    choices = []
    for pos, cand in enumerate(resp.get("candidates") or []):
        text, thoughts, calls, signature = split_parts(
            (cand.get("content") or {}).get("parts") or []
        )
        message: ChatMessage = {
            "role": "assistant",
            "content": text or (None if calls else ""),
            "refusal": None,  # required (nullable) in a chat completion message
        }
        if include_thoughts and thoughts:
            message["reasoning_content"] = thoughts
        if calls:
            message["tool_calls"] = calls
        if signature:
            message["extra_content"] = signature_extra(signature)
        choices.append({
            "index": cand.get("index", pos),
            "message": message,
            "logprobs": _logprobs(cand),
            "finish_reason": finish_reason(cand.get("finishReason"), bool(calls)),
        })  # fmt: skip
    if not choices:  # the prompt was blocked (promptFeedback.blockReason), or nothing came
        blocked = bool((resp.get("promptFeedback") or {}).get("blockReason"))
        choices.append({
            "index": 0,
            "message": {"role": "assistant", "content": "", "refusal": None},
            "logprobs": None,
            "finish_reason": "content_filter" if blocked else "stop",
        })  # fmt: skip
    return {
        "id": _chat_id(resp),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": gemini_usage_to_chat(resp.get("usageMetadata")),
    }


class GeminiToChatStream:
    """Gemini stream objects in, `chat.completion.chunk` dicts out, nothing buffered.

    One chunk id for the whole stream; `role` only in each choice's first delta; tool
    calls as one delta each (Gemini sends whole calls) with an `index` counting across
    the stream; finish chunks and the usage chunk come from `finish()`, because Gemini
    may still send parts in the chunk that carries finishReason. `usage` is readable
    for accounting whether or not the client asked for the usage chunk.
    """

    def __init__(self, model: str, include_thoughts: bool, include_usage: bool) -> None:
        self.model = model
        self.include_thoughts = include_thoughts
        self.include_usage = include_usage
        self.id: str | None = None
        self.created = int(time.time())
        self._started: set[int] = set()
        self._calls: dict[int, int] = {}  # choice index -> tool calls emitted so far
        self._finish: dict[int, str] = {}
        self._meta: dict[str, Any] | None = None

    @property
    def usage(self) -> dict[str, Any] | None:
        return gemini_usage_to_chat(self._meta) if self._meta is not None else None

    def _chunk(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        # With usage asked for, null on all but the final usage chunk, as OpenAI does.
        if self.include_usage:
            return chat_chunk(self.id, self.created, self.model, choices, usage=None)
        return chat_chunk(self.id, self.created, self.model, choices)

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        if isinstance(chunk.get("error"), dict):
            code = chunk["error"].get("code")
            status = code if isinstance(code, int) and code >= 400 else 502
            raise from_upstream(status, orjson.dumps(chunk))
        if self.id is None:
            self.id = _chat_id(chunk)
        if isinstance(chunk.get("usageMetadata"), dict):
            self._meta = chunk["usageMetadata"]
        out = []
        for pos, cand in enumerate(chunk.get("candidates") or []):
            index = int(cand.get("index", pos))
            delta = self._delta(index, (cand.get("content") or {}).get("parts") or [])
            if delta:
                out.append(self._chunk([chat_choice(index, delta)]))
            if cand.get("finishReason"):
                self._finish[index] = finish_reason(cand["finishReason"], index in self._calls)
        if not chunk.get("candidates") and (chunk.get("promptFeedback") or {}).get("blockReason"):
            self._finish[0] = "content_filter"
        return out

    def _delta(self, index: int, parts: list[dict[str, Any]]) -> ChatMessage:
        text, thoughts, calls, signature = split_parts(parts)
        delta: ChatMessage = {}
        if text:
            delta["content"] = text
        if thoughts and self.include_thoughts:
            delta["reasoning_content"] = thoughts
        if calls:
            first = self._calls.get(index, 0)
            delta["tool_calls"] = [{"index": first + n, **call} for n, call in enumerate(calls)]
            self._calls[index] = first + len(calls)
        if signature:
            delta["extra_content"] = signature_extra(signature)
        if delta and index not in self._started:
            self._started.add(index)
            delta = {"role": "assistant", **delta}
        return delta

    def finish(self) -> list[dict[str, Any]]:
        """The finish chunk of every choice, then the usage chunk when asked for.

        A stream that ends before any finishReason was cut short: that is an error, not
        a success, so it raises and the caller ends the stream with an error frame.
        """
        if not self._finish:
            raise truncated("The Gemini stream ended without a finish reason.")
        if self.id is None:
            self.id = _chat_id({})
        out = []
        for index in sorted(self._finish):
            delta: ChatMessage = (
                {} if index in self._started else {"role": "assistant", "content": ""}
            )
            out.append(self._chunk([chat_choice(index, delta, self._finish[index])]))
        if self.include_usage:
            usage_chunk = self._chunk([])
            usage_chunk["usage"] = gemini_usage_to_chat(self._meta)
            out.append(usage_chunk)
        return out
