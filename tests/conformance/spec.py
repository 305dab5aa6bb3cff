"""The providers' published schemas as validators, plus the live rules they do not show.

`schemas/openai.json` holds the component schemas of OpenAI's OpenAPI description and
`schemas/gemini.json` Gemini's v1beta request messages (see the extract_*.py scripts
beside them for the sources). Where a published document and the live API disagree,
the live API's rule is encoded here, each with the evidence next to it; nothing else is
relaxed.

Answers (what the gateway sends a client) are checked as published: required fields,
types, enums, const values. Requests (what the gateway sends upstream) are checked the
way the live APIs check them, refusing unknown fields: OpenAI answers 400 to any
argument or message field it does not know ("Unrecognized request argument supplied",
"Additional properties are not allowed"), Gemini to any unknown name ("Invalid JSON
payload received. Unknown name ... Cannot find field", zed-industries/zed#44875).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

SCHEMAS = Path(__file__).parent / "schemas"


@cache
def _openai() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((SCHEMAS / "openai.json").read_text())
    return document


@cache
def _gemini() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((SCHEMAS / "gemini.json").read_text())
    return document


def openai_source() -> dict[str, Any]:
    return dict(_openai()["source"])


# ------------------------------------------------------------------ quirks (answers)
# Each: where the published 2.3.0 schema and the live API disagree, and the evidence.


def _nullable(node: Any) -> Any:
    """The 2.3.0 document is OpenAPI 3.1 but still marks 111 schemas with OpenAPI 3.0's
    `nullable: true`, which JSON Schema ignores: read it as the document means it."""
    if isinstance(node, list):
        return [_nullable(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable(v) for k, v in node.items() if k != "nullable"}
    if "discriminator" in out and "oneOf" in out:
        # A discriminated union, picked by `type`: as OpenAPI means it, not as JSON
        # Schema's exclusive oneOf. Read literally, InputItem refuses every message with
        # content parts, which EasyInputMessage and InputMessage both describe (the SDK's
        # ResponseInputItemParam is a plain Union of the two).
        out["anyOf"] = out.pop("oneOf")
    if node.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


def _answer_quirks(defs: dict[str, Any]) -> None:
    # 0. A chat stream chunk's `usage` is published as a plain CompletionUsage, while the
    #    same schema's description says "it contains a null value except for the last
    #    chunk" (and the SDK's ChatCompletionChunk.usage is Optional).
    usage = defs["CreateChatCompletionStreamResponse"]["properties"]["usage"]
    defs["CreateChatCompletionStreamResponse"]["properties"]["usage"] = {
        "anyOf": [usage, {"type": "null"}]
    }
    # 1. A Response's `usage` and `user` are published as non-null, while the same
    #    document's own examples have both null: the `response.created` example
    #    (ResponseCreatedEvent x-oaiMeta, `"usage": null, "user": null`, an in-progress
    #    response has no usage yet) and the POST /responses example (`"user": null`).
    own = next(m for m in defs["Response"]["allOf"] if "usage" in (m.get("properties") or {}))
    own["properties"]["usage"] = {"anyOf": [own["properties"]["usage"], {"type": "null"}]}
    user = defs["ModelResponseProperties"]["properties"]["user"]
    defs["ModelResponseProperties"]["properties"]["user"] = {"anyOf": [user, {"type": "null"}]}
    # 2. `Embedding.embedding` is published as an array of numbers only, but with
    #    `encoding_format: "base64"` the live API answers a base64 string, and the
    #    official SDK asks for base64 by default and decodes it (openai-python
    #    `resources/embeddings.py`: `encoding_format` defaults to "base64", then
    #    `base64.b64decode` of each `embedding` string; protocols reference B3).
    embedding = defs["Embedding"]["properties"]["embedding"]
    defs["Embedding"]["properties"]["embedding"] = {
        "anyOf": [embedding, {"type": "string", "contentEncoding": "base64"}]
    }


# ------------------------------------------------------------------ validators


def _strict(node: Any, partial: bool = False) -> Any:
    """Refuse unknown fields in every object schema that names its properties.

    `unevaluatedProperties` (not `additionalProperties`), set on whole objects only: an
    `allOf` member is a part of one, so its parent carries the rule and the properties
    every member declares count as known."""
    if isinstance(node, list):
        return [_strict(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: (v if k == "allOf" else _strict(v)) for k, v in node.items()}
    if isinstance(node.get("allOf"), list):
        out["allOf"] = [_strict(member, partial=True) for member in node["allOf"]]
    whole = isinstance(node.get("properties"), dict) or isinstance(node.get("allOf"), list)
    if whole and not partial and "additionalProperties" not in node:
        out["unevaluatedProperties"] = False
    return out


def _strict_defs(defs: dict[str, Any]) -> dict[str, Any]:
    # Definitions used as allOf members are parts too.
    parts = {
        member["$ref"].rsplit("/", 1)[-1]
        for schema in _walk(defs)
        for member in schema.get("allOf") or []
        if isinstance(member, dict) and isinstance(member.get("$ref"), str)
    }
    return {name: _strict(schema, partial=name in parts) for name, schema in defs.items()}


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


@cache
def _openai_defs(request: bool) -> dict[str, Any]:
    defs: dict[str, Any] = _nullable(copy.deepcopy(_openai()["$defs"]))
    if request:
        _request_rules(defs)
        return _strict_defs(defs)
    _answer_quirks(defs)
    return defs


@cache
def openai_validator(name: str, request: bool = False) -> Draft202012Validator:
    schema = {"$defs": _openai_defs(request), "$ref": f"#/$defs/{name}"}
    return Draft202012Validator(schema)


@cache
def _event_schemas() -> dict[str, str]:
    """Responses stream event type -> the component schema that defines it."""
    defs = _openai()["$defs"]
    out = {}
    for member in defs["ResponseStreamEvent"]["anyOf"]:
        name = member["$ref"].rsplit("/", 1)[-1]
        for event_type in defs[name]["properties"]["type"].get("enum", []):
            out[event_type] = name
    return out


def errors(validator: Draft202012Validator, body: Any) -> list[str]:
    found = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    return [_describe(e) for e in found]


def _describe(error: ValidationError) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    detail = error.message
    if error.context:  # anyOf/oneOf: the branch that got furthest says most
        best = best_match(error.context)
        detail = f"{'/'.join(str(p) for p in best.absolute_path)}: {best.message}"
    return f"{where}: {detail[:600]}"


def answer_errors(kind: str, body: Any) -> list[str]:
    """What is wrong with one answer body: kind is chat, chunk, response, event,
    embeddings, models or error."""
    if kind == "event":
        event_type = body.get("type") if isinstance(body, dict) else None
        name = _event_schemas().get(str(event_type))
        if name is None:
            return [f"(root): event type {event_type!r} is not a ResponseStreamEvent"]
        return errors(openai_validator(name), body)
    name = {
        "chat": "CreateChatCompletionResponse",
        "chunk": "CreateChatCompletionStreamResponse",
        "response": "Response",
        "embeddings": "CreateEmbeddingResponse",
        "models": "ListModelsResponse",
        "error": "ErrorResponse",
    }[kind]
    return errors(openai_validator(name), body)


# ------------------------------------------------------------------ live rules (requests)


def _request_rules(defs: dict[str, Any]) -> None:
    # Chat tool call ids: at most 40 characters; the published schema has no limit.
    # Live: "Invalid 'messages[10].tool_calls[0].id': string too long. Expected a string
    # with maximum length 40, but got a string with length 53 instead."
    # (code string_above_max_length; agno-agi/agno#5382, microsoft/autogen#6377).
    defs["ChatCompletionMessageToolCall"]["properties"]["id"]["maxLength"] = 40
    defs["ChatCompletionRequestToolMessage"]["properties"]["tool_call_id"]["maxLength"] = 40
    # Responses `call_id`: at most 64 in every input item, published only on
    # FunctionCallOutputItemParam. Live: "Invalid 'input[95].call_id': string too long.
    # Expected a string with maximum length 64" (AnswerDotAI/fastllm#45,
    # orchidfiles/ungate#26).
    for name in ("FunctionToolCall", "FunctionCallOutputItemParam"):
        call_id = defs[name]["properties"]["call_id"]
        if "anyOf" in call_id:
            for branch in call_id["anyOf"]:
                if branch.get("type") == "string":
                    branch["maxLength"] = 64
        else:
            call_id["maxLength"] = 64


def openai_request_errors(path: str, body: Any) -> list[str]:
    """What OpenAI would refuse in a request body sent to `path`."""
    name = {
        "/chat/completions": "CreateChatCompletionRequest",
        "/responses": "CreateResponse",
        "/embeddings": "CreateEmbeddingRequest",
    }[path]
    return errors(openai_validator(name, request=True), body)


@cache
def _gemini_validator(root: str) -> Draft202012Validator:
    doc = _gemini()
    defs = copy.deepcopy(doc["$defs"])
    # Schema.type: the proto enum names are upper case, and the live API takes lower
    # case too: Google's own REST examples send "type": "object" / "string"
    # (ai.google.dev/gemini-api/docs/function-calling, "schedule_meeting";
    # google-gemini/cookbook quickstarts/rest/Function_calling_REST.ipynb).
    names = defs["Schema"]["properties"]["type"]["enum"]
    defs["Schema"]["properties"]["type"]["enum"] = names + [n.lower() for n in names]
    # ThinkingConfig.thinkingLevel: missing from the packaged v1beta protos (0.12.1 has
    # includeThoughts and thinkingBudget only), but it is how Gemini 3 takes its thinking
    # setting: Google's google-genai 3.3.0 SDK has `ThinkingConfig.thinking_level` with
    # the ThinkingLevel enum below and sends it as `thinkingConfig.thinkingLevel`
    # (google/genai/types.py), and ai.google.dev/gemini-api/docs/thinking documents it.
    defs["ThinkingConfig"]["properties"]["thinkingLevel"] = {
        "enum": ["THINKING_LEVEL_UNSPECIFIED", "MINIMAL", "LOW", "MEDIUM", "HIGH", "XHIGH"]
    }
    return Draft202012Validator({"$defs": defs, "$ref": doc["roots"][root]})


def gemini_request_errors(method: str, body: Any) -> list[str]:
    """What the Gemini API would refuse in a native request body (`method` is the part
    of the path after the colon)."""
    root = {
        "generateContent": "GenerateContentRequest",
        "streamGenerateContent": "GenerateContentRequest",
        "batchEmbedContents": "BatchEmbedContentsRequest",
        "embedContent": "EmbedContentRequest",
    }[method]
    found = errors(_gemini_validator(root), body)
    if root == "GenerateContentRequest" and isinstance(body, dict):
        found += list(_gemini_live_rules(body))
    return found


def _gemini_live_rules(body: dict[str, Any]) -> Iterator[str]:
    """Rules the live API enforces that the v1beta messages do not express."""
    mode = ((body.get("toolConfig") or {}).get("functionCallingConfig") or {}).get("mode")
    for t, tool in enumerate(body.get("tools") or []):
        for d, decl in enumerate(tool.get("functionDeclarations") or []):
            where = f"tools[{t}].function_declarations[{d}]"
            # Mode ANY and a declaration without parameters: 400 INVALID_ARGUMENT
            # "Request contains an invalid argument." (googleapis/python-genai#981).
            if mode == "ANY" and "parameters" not in decl and "parametersJsonSchema" not in decl:
                yield f"{where}: mode ANY needs parameters (googleapis/python-genai#981)"
            if isinstance(decl.get("parameters"), dict):
                yield from _schema_rules(decl["parameters"], f"{where}.parameters")


def _schema_rules(schema: dict[str, Any], where: str) -> Iterator[str]:
    # `type` is required unless anyOf is given: "Invalid value at '...value.type'
    # (type.googleapis.com/google.ai.generativelanguage.v1beta.Type), \"\""
    # (zereight/gitlab-mcp#166); an ARRAY needs `items`: "...properties[tags].items:
    # missing field." (kkrishnan90/gemini-desktop#7).
    if "type" not in schema and "anyOf" not in schema:
        yield f"{where}: type is missing (and no anyOf)"
    if str(schema.get("type", "")).upper() == "ARRAY" and "items" not in schema:
        yield f"{where}.items: missing field"
    for key, sub in (schema.get("properties") or {}).items():
        yield from _schema_rules(sub, f"{where}.properties[{key}]")
    if isinstance(schema.get("items"), dict):
        yield from _schema_rules(schema["items"], f"{where}.items")
    for n, sub in enumerate(schema.get("anyOf") or []):
        yield from _schema_rules(sub, f"{where}.any_of[{n}]")


def compat_request_errors(body: Any) -> list[str]:
    """What Gemini's OpenAI-compatible surface would refuse: OpenAI's chat request, plus
    exactly the extensions Google documents for it (ai.google.dev/gemini-api/docs/openai):
    a top-level `extra_body: {"google": {...}}` (thinking_config, cached_content) and
    `extra_content: {"google": {"thought_signature"}}` on assistant tool calls. Google's
    own tool call ids are not OpenAI's, so the 40-character limit is not applied."""
    if not isinstance(body, dict):
        return ["(root): not an object"]
    body = dict(body)
    extra = body.pop("extra_body", None)
    found = []
    if extra is not None and (not isinstance(extra, dict) or set(extra) - {"google"}):
        found.append(f"extra_body: only 'google' is documented, got {extra!r}"[:300])
    messages = []
    for msg in body.get("messages") or []:
        if isinstance(msg, dict) and isinstance(msg.get("tool_calls"), list):
            calls = [
                {k: v for k, v in c.items() if k != "extra_content"} if isinstance(c, dict) else c
                for c in msg["tool_calls"]
            ]
            calls = [
                {**c, "id": str(c.get("id", ""))[:40]} if isinstance(c, dict) else c for c in calls
            ]
            msg = {**msg, "tool_calls": calls}
        if isinstance(msg, dict) and isinstance(msg.get("tool_call_id"), str):
            msg = {**msg, "tool_call_id": msg["tool_call_id"][:40]}
        messages.append(msg)
    body["messages"] = messages
    return found + openai_request_errors("/chat/completions", body)
