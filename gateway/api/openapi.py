"""Request body schemas for the OpenAPI document (documentation only: nothing validates
against them at run time; the proxy path checks what it needs and answers OpenAI-style)."""

from __future__ import annotations

from typing import Any

_MESSAGE: dict[str, Any] = {
    "type": "object",
    "required": ["role"],
    "properties": {
        "role": {"type": "string", "enum": ["system", "developer", "user", "assistant", "tool"]},
        "content": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]},
    },
}


_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}
# Every failure is OpenAI's error envelope with the status an OpenAI client expects; never 422.
_ERRORS: dict[str, str] = {
    "400": "Malformed body, wrong type, missing field, or input over the model's context window",
    "401": "Missing or wrong gateway key",
    "404": "Unknown model",
    "413": "Body over GATEWAY_MAX_BODY_MB",
    "429": "Rate limited upstream (retry-after kept)",
    "502": "Upstream failure",
    "503": "Provider key not set, or every deployment cooling down",
    "504": "Upstream timeout",
}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    errors = {
        status: {"description": text, "content": {"application/json": {"schema": _ERROR}}}
        for status, text in _ERRORS.items()
    }
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
        "responses": errors,
    }


CHAT_BODY = _body(
    {
        "type": "object",
        "required": ["model", "messages"],
        "properties": {
            "model": {"type": "string"},
            "messages": {"type": "array", "minItems": 1, "items": _MESSAGE},
            "stream": {"type": "boolean"},
            "max_tokens": {"type": "integer", "minimum": 1},
            "max_completion_tokens": {"type": "integer", "minimum": 1},
            "temperature": {"type": "number"},
            "reasoning_effort": {
                "type": "string",
                "enum": ["none", "minimal", "low", "medium", "high", "xhigh"],
            },
            "tools": {"type": "array", "items": {"type": "object"}},
        },
    }
)

RESPONSES_BODY = _body(
    {
        "type": "object",
        "required": ["model", "input"],
        "properties": {
            "model": {"type": "string"},
            "input": {
                "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]
            },
            "instructions": {"type": "string"},
            "stream": {"type": "boolean"},
            "max_output_tokens": {"type": "integer", "minimum": 1},
            "reasoning": {"type": "object"},
            "tools": {"type": "array", "items": {"type": "object"}},
        },
    }
)

EMBEDDINGS_BODY = _body(
    {
        "type": "object",
        "required": ["model", "input"],
        "properties": {
            "model": {"type": "string"},
            "input": {
                "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
            },
            "encoding_format": {"type": "string", "enum": ["float", "base64"]},
            "dimensions": {"type": "integer", "minimum": 1},
        },
    }
)

BODIES = {"chat": CHAT_BODY, "responses": RESPONSES_BODY, "embeddings": EMBEDDINGS_BODY}
