"""Limits on what a client may send, checked before any upstream call (no money spent).

Each check is cheap on the common small request: the depth walk is skipped when the body
holds too few brackets to be that deep, and the context-window estimate when the body
has fewer bytes than the window has tokens (a token is at least one byte of text).
"""

from __future__ import annotations

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


def check_depth(body: dict[str, Any], raw: bytes) -> None:
    if raw.count(b"{") + raw.count(b"[") <= MAX_DEPTH:
        return
    stack: list[tuple[Any, int]] = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BadRequest(f"The request body is nested more than {MAX_DEPTH} levels deep.",
                             code="invalid_request_body")
        for child in value.values() if isinstance(value, dict) else value:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))


def check_items(client_api: ClientAPI, body: dict[str, Any]) -> None:
    name = "messages" if client_api == "chat" else "input"
    value = body.get(name)
    if isinstance(value, list) and len(value) > MAX_ITEMS:
        raise BadRequest(f"'{name}' has {len(value)} items; this gateway takes at most {MAX_ITEMS}.",
                         param=name, code="too_many_items")


class ContextCheck:
    """The request's input tokens, estimated once and compared with each model tried."""

    __slots__ = ("_estimate", "client_api", "size")

    def __init__(self, client_api: ClientAPI, size: int) -> None:
        self.client_api = client_api
        self.size = size
        self._estimate: int | None = None

    def check(self, params: dict[str, Any], model: Model) -> None:
        window = model.entry.context_window
        if window is None or self.size <= window:
            return
        if self._estimate is None:
            self._estimate = estimate_input(self.client_api, params)
        if self._estimate > window:
            param = "messages" if self.client_api == "chat" else "input"
            what = "the largest input" if self.client_api == "embeddings" else "the input"
            raise BadRequest(
                f"This model's maximum context length is {window} tokens; {what} is about "
                f"{self._estimate} tokens (estimated). Shorten it or use a model with a larger "
                "context window.",
                param=param, code="context_length_exceeded",
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
            params.get("input") or "", instructions if isinstance(instructions, str) else None, tools=tools
        )
    try:
        return max(estimate_embedding_input_tokens(params.get("input") or ""), default=0)
    except TypeError:
        return 0  # an input of another shape: the upstream judges it
