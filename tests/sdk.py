"""What the tests read from, and send back through, the official `openai` SDK, typed.

The SDK types an answer's tool calls as optional and of several kinds, and a
`model_dump()` as `dict[str, Any]`; these helpers check at run time what the types
cannot know, so a test says what it expects once.
"""

from __future__ import annotations

from openai.types.chat import (
    ChatCompletionAssistantMessageParam,
    ChatCompletionMessage,
    ChatCompletionMessageFunctionToolCall,
)
from openai.types.responses import ResponseInputItemParam, ResponseOutputItem


def function_call(
    message: ChatCompletionMessage, index: int = 0
) -> ChatCompletionMessageFunctionToolCall:
    """The answer's `index`-th tool call, which must be there and be a function call."""
    calls = message.tool_calls
    assert calls is not None and len(calls) > index, message
    call = calls[index]
    assert isinstance(call, ChatCompletionMessageFunctionToolCall), call
    return call


def sent_back(message: ChatCompletionMessage) -> ChatCompletionAssistantMessageParam:
    """An answer's message as a client sends it back in the next turn: the SDK's own dump."""
    dumped = message.model_dump(exclude_none=True)
    assert dumped["role"] == "assistant", dumped
    # The dump is the param (same fields, same names); the SDK types it dict[str, Any].
    param: ChatCompletionAssistantMessageParam = dumped  # type: ignore[assignment]
    return param


def items_back(output: list[ResponseOutputItem]) -> list[ResponseInputItemParam]:
    """A Responses answer's output items as a client sends them back as input."""
    dumped = [item.model_dump(exclude_none=True) for item in output]
    assert all("type" in item for item in dumped), dumped
    # Each output item is a valid input item (same fields); the SDK types a dump dict[str, Any].
    items: list[ResponseInputItemParam] = dumped  # type: ignore[assignment]
    return items
