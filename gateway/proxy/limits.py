"""Limits on what a client may send, checked before any upstream call (no money spent).

Each check is cheap on the common small request: the depth walk is skipped when the body
holds too few brackets to be that deep, and the context-window estimate when the body
has fewer bytes than the window has tokens (a token is at least one byte of text).
"""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.errors import BadRequest
from gateway.registry.snapshot import Model
from gateway.tokens import (
    estimate_chat_tokens,
    estimate_embedding_input_tokens,
    estimate_responses_input_tokens,
)
from gateway.types import ClientAPI

MAX_DEPTH = 64  # JSON nesting; real requests (tool schemas included) stay far below
MAX_ITEMS = 10_000  # messages, input items or embedding inputs in one request
# No o200k token spans more characters than this (128 spaces are one token); a token of
# other text is far shorter, so characters / 128 is a floor of the count.
MAX_CHARS_PER_TOKEN = 128
# Above this many body bytes the token count runs in a worker thread: tokenizing runs at
# about 2.5 MB/s of varied text here, so 4 kB is under 2 ms of loop time, and a thread hop
# (about 0.1 ms) is worth it beyond.
OFF_LOOP_BYTES = 4 * 1024


def check_depth(body: dict[str, Any], raw: bytes) -> None:
    if raw.count(b"{") + raw.count(b"[") <= MAX_DEPTH:
        return
    stack: list[tuple[Any, int]] = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BadRequest(
                f"The request body is nested more than {MAX_DEPTH} levels deep.",
                code="invalid_request_body",
            )
        for child in value.values() if isinstance(value, dict) else value:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))


def check_items(client_api: ClientAPI, body: dict[str, Any]) -> None:
    name = "messages" if client_api == "chat" else "input"
    value = body.get(name)
    if isinstance(value, list) and len(value) > MAX_ITEMS:
        raise BadRequest(
            f"'{name}' has {len(value)} items; this gateway takes at most {MAX_ITEMS}.",
            param=name,
            code="too_many_items",
        )


class ContextCheck:
    """The request's input tokens, estimated once and compared with each model tried."""

    __slots__ = ("_at_least", "_estimate", "client_api", "size")

    def __init__(self, client_api: ClientAPI, size: int) -> None:
        self.client_api = client_api
        self.size = size
        self._estimate: int | None = None
        self._at_least = False  # the estimate is a floor (the input is over by far)

    def needs_count(self, model: Model) -> bool:
        window = model.entry.context_window
        return window is not None and self.size > window and self._estimate is None

    async def count(self, params: dict[str, Any], model: Model) -> None:
        """Count the input now, without holding the event loop: tokenizing runs at about
        2.5 MB/s of varied text, so an 8 MB prompt would stall every other request for 3 s.

        First a bound that costs no tokenizing: no token is longer than
        MAX_CHARS_PER_TOKEN characters, so text of more than window x that many characters
        is over the window whatever its exact count. Anything else past OFF_LOOP_BYTES is
        counted in a worker thread (the tokenizer releases the GIL)."""
        window = model.entry.context_window or 0
        floor = -(-_text_chars(self.client_api, params) // MAX_CHARS_PER_TOKEN)
        if floor > window:
            self._estimate, self._at_least = floor, True
        elif self.size > OFF_LOOP_BYTES:
            self._estimate = await asyncio.to_thread(estimate_input, self.client_api, params)
        else:
            self._estimate = estimate_input(self.client_api, params)

    def check(self, params: dict[str, Any], model: Model) -> None:
        window = model.entry.context_window
        if window is None or self.size <= window:
            return
        if self._estimate is None:
            self._estimate = estimate_input(self.client_api, params)
        if self._estimate > window:
            param = "messages" if self.client_api == "chat" else "input"
            what = "the largest input" if self.client_api == "embeddings" else "the input"
            about = "at least" if self._at_least else "about"
            raise BadRequest(
                f"This model's maximum context length is {window} tokens; {what} is {about} "
                f"{self._estimate} tokens (estimated). Shorten it or use a model with a larger "
                "context window.",
                param=param,
                code="context_length_exceeded",
            )


def estimate_input(client_api: ClientAPI, params: dict[str, Any]) -> int:
    """The input tokens of a client request, by the offline tokenizer (gateway.tokens)."""
    tools = params.get("tools")
    tools = tools if isinstance(tools, list) else None
    if client_api == "chat":
        return estimate_chat_tokens(params.get("messages") or [], tools=tools)
    if client_api == "responses":
        instructions = params.get("instructions")
        return estimate_responses_input_tokens(
            params.get("input") or "",
            instructions if isinstance(instructions, str) else None,
            tools=tools,
        )
    try:
        return max(estimate_embedding_input_tokens(params.get("input") or ""), default=0)
    except TypeError:
        return 0  # an input of another shape: the upstream judges it


_TEXT_PARTS = frozenset({"text", "input_text", "output_text"})


def _content_chars(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(
            len(part["text"])
            for part in content
            if isinstance(part, dict)
            and part.get("type") in _TEXT_PARTS
            and isinstance(part.get("text"), str)
        )
    return 0


def _text_chars(client_api: ClientAPI, params: dict[str, Any]) -> int:
    """Characters of plain text in the input: part of what the estimate counts, so the
    floor it gives is never above the estimate (images, files, tools are left out)."""
    if client_api == "chat":
        messages = params.get("messages")
        return (
            sum(_content_chars(m.get("content")) for m in messages if isinstance(m, dict))
            if isinstance(messages, list)
            else 0
        )
    if client_api == "responses":
        items = params.get("input")
        chars = len(params["instructions"]) if isinstance(params.get("instructions"), str) else 0
        if isinstance(items, str):
            return chars + len(items)
        if isinstance(items, list):
            chars += sum(
                _content_chars(item.get("content")) for item in items if isinstance(item, dict)
            )
        return chars
    inputs = params.get("input")
    if isinstance(inputs, str):
        return len(inputs)
    if isinstance(inputs, list):  # the largest input is what the window is checked against
        return max((len(i) for i in inputs if isinstance(i, str)), default=0)
    return 0
