"""Internal chat request -> Gemini `generateContent` body (native API, camelCase JSON).

`chat_to_generate_content` is the request side; the response side (`generate_content_to_chat`,
`gemini_usage_to_chat`) lives in `gemini_stream.py` next to the stream state machine
and is re-exported here, so callers import both directions from this module.

Fields of the internal request that Gemini has no equivalent for are dropped, not
sent: `logit_bias`, `user`, `metadata`, `store`, `service_tier`, `parallel_tool_calls`,
`stream`/`stream_options` (streaming is the URL, not the body), `prediction`,
`modalities`, `audio`, `prompt_cache_key`, `safety_identifier`, `web_search_options`,
`verbosity`, `reasoning_effort` (the policy turned it into thinking settings), and the
legacy `functions`/`function_call` (a `function` role message is a 400).

Thought signatures come back from clients in the tool call id or in
`extra_content.google.thought_signature` (see `gemini_compat`), and go back to Gemini
as `thoughtSignature` on the part they came from: a functionCall part, or for a
message-level signature (one Gemini put on a text or empty part) the last text part.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import orjson

from gateway.errors import BadRequest
from gateway.translate.gemini_compat import decode_tool_call_id, google_signature
from gateway.translate.gemini_schema import RecursiveSchema, gemini_schema
from gateway.translate.gemini_stream import (  # re-exported: the response direction
    finish_reason,
    gemini_usage_to_chat,
    generate_content_to_chat,
)
from gateway.translate.shapes import (
    GeminiContent,
    GeminiFunctionCall,
    GeminiFunctionResponse,
    GeminiPart,
)

__all__ = [
    "chat_to_generate_content",
    "finish_reason",
    "gemini_schema",
    "gemini_usage_to_chat",
    "generate_content_to_chat",
]

# Ids the gateway made up (gemini_stream.new_call_id) for calls Gemini sent without one:
# they mean nothing to Gemini, so they are never sent back as functionCall/Response `id`.
_GENERATED_ID = re.compile(r"^call_[0-9a-f]{24}$")

# --------------------------------------------------------------------------- request

# Extension -> MIME type; a fixed table so the result does not depend on the host's
# mime.types. Unknown extensions on an image_url default to image/jpeg.
_MIME_BY_EXT = {
    "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp",
    "gif": "image/gif", "heic": "image/heic", "heif": "image/heif", "pdf": "application/pdf",
    "mp3": "audio/mp3", "wav": "audio/wav", "ogg": "audio/ogg", "flac": "audio/flac",
    "aac": "audio/aac", "mp4": "video/mp4", "mov": "video/mov", "webm": "video/webm",
    "txt": "text/plain",
}  # fmt: skip
_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?((?:;[^;,]*)*?);base64,(.*)$", re.DOTALL)


def _mime_from_path(path: str, default: str) -> str:
    name = path.rsplit("/", 1)[-1]
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return _MIME_BY_EXT.get(ext, default)


def _media_part(url: str, where: str, default_mime: str = "image/jpeg") -> GeminiPart:
    if url.startswith("data:"):
        match = _DATA_URL.match(url)
        if not match:
            raise BadRequest(f"{where}: only base64 data URLs are supported", param=where)
        return {"inlineData": {"mimeType": match.group(1) or default_mime, "data": match.group(3)}}
    scheme = urlsplit(url).scheme
    if scheme in ("http", "https", "gs"):
        mime = _mime_from_path(urlsplit(url).path, default_mime)
        return {"fileData": {"mimeType": mime, "fileUri": url}}
    raise BadRequest(f"{where}: expected a data: or http(s) URL", param=where)


def _content_part(part: Any, where: str) -> GeminiPart | None:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in ("text", "input_text", "refusal"):
        text = part.get("text", part.get("refusal"))
        return {"text": text} if isinstance(text, str) and text else None
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if not isinstance(url, str):
            raise BadRequest(f"{where}.image_url.url is required", param=f"{where}.image_url")
        return _media_part(url, f"{where}.image_url.url")
    if kind == "input_audio":
        audio = part.get("input_audio") or {}
        fmt = str(audio.get("format") or "wav")
        return {"inlineData": {"mimeType": f"audio/{fmt}", "data": audio.get("data", "")}}
    if kind == "file":
        file = part.get("file") or {}
        data = file.get("file_data")
        if not isinstance(data, str):
            raise BadRequest(f"{where}: file_id references cannot be sent to Gemini", param=where)
        if data.startswith("data:"):
            return _media_part(data, where, "application/pdf")
        mime = _mime_from_path(str(file.get("filename") or ""), "application/pdf")
        return {"inlineData": {"mimeType": mime, "data": data}}
    raise BadRequest(f"{where}: unsupported content part type {kind!r}", param=f"{where}.type")


def _parts(content: Any, where: str, text_only: bool = False) -> list[GeminiPart]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise BadRequest(f"{where} must be a string or a list of parts", param=where)
    parts: list[GeminiPart] = []
    for j, item in enumerate(content):
        part = _content_part(item, f"{where}[{j}]")
        if part is None:
            continue
        if text_only and "text" not in part:
            raise BadRequest(f"{where}[{j}]: only text is allowed here", param=f"{where}[{j}]")
        parts.append(part)
    return parts


def _assistant_parts(msg: dict[str, Any], i: int, names: dict[str, str]) -> list[GeminiPart]:
    parts = _parts(msg.get("content"), f"messages[{i}].content", text_only=True)
    text_sig = google_signature(msg)
    if text_sig and parts:
        parts[-1]["thoughtSignature"] = text_sig
    for j, call in enumerate(msg.get("tool_calls") or []):
        where = f"messages[{i}].tool_calls[{j}]"
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise BadRequest(f"{where}.function.name is required", param=where)
        raw_args = fn.get("arguments") or "{}"
        try:
            args = orjson.loads(raw_args) if isinstance(raw_args, str) else raw_args
        except orjson.JSONDecodeError:
            raise BadRequest(
                f"{where}.function.arguments is not valid JSON", param=f"{where}.function.arguments"
            ) from None
        if not isinstance(args, dict):
            raise BadRequest(
                f"{where}.function.arguments must be a JSON object",
                param=f"{where}.function.arguments",
            )
        call_id = str(call.get("id") or "")
        base, id_sig = decode_tool_call_id(call_id)
        names[call_id] = names[base] = fn["name"]
        function_call: GeminiFunctionCall = {"name": fn["name"], "args": args}
        if base and not _GENERATED_ID.match(base):
            function_call["id"] = base  # Gemini's own id: it matches calls to responses
        part: GeminiPart = {"functionCall": function_call}
        signature = google_signature(call) or id_sig
        if signature:
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def _function_response(msg: dict[str, Any], i: int, names: dict[str, str]) -> GeminiPart:
    call_id = str(msg.get("tool_call_id") or "")
    base, _ = decode_tool_call_id(call_id)
    name = names.get(call_id) or names.get(base) or msg.get("name")
    if not isinstance(name, str) or not name:
        raise BadRequest(
            f"messages[{i}].tool_call_id does not match an earlier tool call",
            param=f"messages[{i}].tool_call_id",
        )
    text = "".join(p["text"] for p in _parts(msg.get("content"), f"messages[{i}].content", True))
    # Gemini wants an object: a JSON object goes as is, other JSON as {"result": value},
    # text that is not JSON as {"content": text}.
    try:
        value: Any = orjson.loads(text)
        response = value if isinstance(value, dict) else {"result": value}
    except orjson.JSONDecodeError:
        response = {"content": text}
    function_response: GeminiFunctionResponse = {"name": name, "response": response}
    if base and not _GENERATED_ID.match(base):
        function_response["id"] = base
    return {"functionResponse": function_response}


def _contents(messages: Any) -> tuple[list[GeminiPart], list[GeminiContent]]:
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty list", param="messages")
    system: list[GeminiPart] = []
    contents: list[GeminiContent] = []
    names: dict[str, str] = {}
    previous_role = None
    for i, msg in enumerate(messages):
        role = msg.get("role") if isinstance(msg, dict) else None
        if role in ("system", "developer"):
            system.extend(_parts(msg.get("content"), f"messages[{i}].content", text_only=True))
        elif role == "user":
            contents.append(
                {"role": "user", "parts": _parts(msg.get("content"), f"messages[{i}].content")}
            )
        elif role == "assistant":
            contents.append({"role": "model", "parts": _assistant_parts(msg, i, names)})
        elif role == "tool":
            part = _function_response(msg, i, names)
            if previous_role == "tool":  # parallel results belong in one turn
                contents[-1]["parts"].append(part)
            else:
                contents.append({"role": "user", "parts": [part]})
        else:
            raise BadRequest(
                f"messages[{i}].role {role!r} is not supported", param=f"messages[{i}].role"
            )
        previous_role = role
    return system, [c for c in contents if c["parts"]]  # Gemini rejects empty turns


def _tools(tools: Any, choice: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise BadRequest("'tools' must be a list", param="tools")
    # With mode ANY the live API refuses a declaration without `parameters`
    # (googleapis/python-genai#981); an empty object schema is what it takes there.
    forced = choice == "required" or (isinstance(choice, dict) and choice.get("type") == "function")
    declarations = []
    for j, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or tool.get("type") != "function" or not fn.get("name"):
            raise BadRequest(
                f"tools[{j}]: only function tools with a name can be sent to Gemini",
                param=f"tools[{j}]",
            )
        decl: dict[str, Any] = {"name": fn["name"]}
        if fn.get("description"):
            decl["description"] = fn["description"]
        params = fn.get("parameters")
        schema: dict[str, Any] = {}
        if isinstance(params, dict):
            try:
                schema = gemini_schema(params, f"tools[{j}].function.parameters")
            except RecursiveSchema:
                decl["parametersJsonSchema"] = params  # real JSON Schema, $refs and all
                declarations.append(decl)
                continue
        if schema.get("properties") or schema.get("type", "object") != "object":
            decl["parameters"] = schema
        elif forced:
            decl["parameters"] = {"type": "object", "properties": {}}
        # Otherwise a function without arguments simply has no parameters: an OBJECT with
        # no properties used to be refused ("should be non-empty for OBJECT type").
        declarations.append(decl)
    return [{"functionDeclarations": declarations}]


def _tool_config(choice: Any) -> dict[str, Any]:
    modes = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
    if isinstance(choice, str) and choice in modes:
        return {"functionCallingConfig": {"mode": modes[choice]}}
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
        if isinstance(name, str) and name:
            return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}
    raise BadRequest(
        "'tool_choice' must be auto, none, required or a named function", param="tool_choice"
    )


_GENERATION_KEYS = {
    "temperature": "temperature",
    "top_p": "topP",
    "top_k": "topK",
    "seed": "seed",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
    "n": "candidateCount",
    "max_output_tokens": "maxOutputTokens",
}


def _generation_config(body: dict[str, Any]) -> dict[str, Any]:
    config = {g: body[k] for k, g in _GENERATION_KEYS.items() if body.get(k) is not None}
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("logprobs"):
        config["responseLogprobs"] = True
        if body.get("top_logprobs") is not None:
            config["logprobs"] = body["top_logprobs"]
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = (fmt.get("json_schema") or {}).get("schema")
        if fmt["type"] == "json_schema" and isinstance(schema, dict):
            # responseJsonSchema takes real JSON Schema ($ref, additionalProperties...),
            # so the client's schema goes unchanged, unlike tool parameters.
            config["responseJsonSchema"] = schema
    elif fmt is not None and not (isinstance(fmt, dict) and fmt.get("type") == "text"):
        raise BadRequest(
            "'response_format' type must be text, json_object or json_schema",
            param="response_format",
        )
    thinking: dict[str, Any] = {}
    if body.get("thinking_level") is not None:
        thinking["thinkingLevel"] = str(body["thinking_level"]).upper()  # proto enum names
    elif body.get("thinking_budget") is not None:
        thinking["thinkingBudget"] = int(body["thinking_budget"])
    if body.get("include_thoughts"):  # false is the default; sending it can 400 on old models
        thinking["includeThoughts"] = True
    if thinking:
        config["thinkingConfig"] = thinking
    return config


def chat_to_generate_content(body: dict[str, Any]) -> dict[str, Any]:
    """The internal chat request as a `generateContent` body."""
    system, contents = _contents(body.get("messages"))
    out: dict[str, Any] = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": system}
    if body.get("tools"):
        out["tools"] = _tools(body["tools"], body.get("tool_choice"))
        if body.get("tool_choice") is not None:
            out["toolConfig"] = _tool_config(body["tool_choice"])
    config = _generation_config(body)
    if config:
        out["generationConfig"] = config
    return out
