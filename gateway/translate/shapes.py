"""The conversation as the translators hand it to each other: what a message, a content
part, a tool call, a Responses input item and a Gemini content or part hold.

These are the shapes the translators build. What a client or an upstream sends is JSON
of any shape until a translator has checked it, so inputs stay `dict[str, Any]` (the
checks turn a bad one into a 400 or a 502); what comes out is one of these. All are
`total=False` where the wire leaves a key out, so a value is built key by key exactly as
it is sent (a TypedDict is a plain dict at run time).
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

# ---- OpenAI Chat Completions ------------------------------------------------------------


class FunctionCall(TypedDict, total=False):
    """Both keys in a message; a stream delta's later fragments carry `arguments` only."""

    name: str | None  # None only where the upstream sent none: relayed as it came
    arguments: str  # JSON text, as the model wrote it


class ToolCall(TypedDict, total=False):
    """One tool call of an assistant message (or of a stream chunk's delta: `index`)."""

    index: int
    id: str | None  # None only where the upstream sent none: relayed as it came
    type: Literal["function"]
    function: FunctionCall
    # Gemini's OpenAI-compatible surface: {"google": {"thought_signature": ...}}
    extra_content: dict[str, Any]


class ContentPart(TypedDict, total=False):
    """One part of a message's content list."""

    type: str  # text | image_url | input_audio | file | refusal
    text: str
    refusal: str
    image_url: dict[str, Any]
    input_audio: dict[str, Any]
    file: dict[str, Any]


class ChatMessage(TypedDict, total=False):
    role: str  # system | developer | user | assistant | tool
    content: str | list[ContentPart] | None
    name: str
    tool_calls: list[ToolCall]
    tool_call_id: str
    refusal: str | None
    reasoning_content: str  # the gateway's field for a model's visible thinking
    extra_content: dict[str, Any]


# ---- OpenAI Responses -------------------------------------------------------------------


class ResponsesItem(TypedDict, total=False):
    """One Responses input (or output) item: a message, a function call or its output,
    a reasoning item."""

    type: str  # message | function_call | function_call_output | reasoning
    id: str
    role: str
    # input_text / input_image / input_file / output_text parts; a file part carries the
    # client's own keys, so the parts stay plain objects
    content: str | list[dict[str, Any]]
    status: str
    call_id: str
    name: str | None  # None only where the sender gave none: passed on as it came
    arguments: str
    output: str
    summary: list[dict[str, Any]]


# ---- Gemini (native API, camelCase) -----------------------------------------------------


class GeminiBlob(TypedDict):
    mimeType: str
    data: str  # base64


class GeminiFileData(TypedDict):
    mimeType: str
    fileUri: str


class GeminiFunctionCall(TypedDict, total=False):
    id: str
    name: str
    args: dict[str, Any]


class GeminiFunctionResponse(TypedDict, total=False):
    id: str
    name: str
    response: dict[str, Any]


class GeminiPart(TypedDict, total=False):
    text: str
    thought: bool
    thoughtSignature: str
    inlineData: GeminiBlob
    fileData: GeminiFileData
    functionCall: GeminiFunctionCall
    functionResponse: GeminiFunctionResponse


class GeminiContent(TypedDict, total=False):
    role: Literal["user", "model"]
    parts: list[GeminiPart]
