"""Issue 19: what goes upstream is what that upstream takes (history from Gemini to
OpenAI, Gemini tool schemas as pydantic and zod write them)."""

from __future__ import annotations

from typing import Any

from gateway.translate.gemini import chat_to_generate_content
from gateway.translate.gemini_compat import encode_tool_call_id
from gateway.translate.gemini_schema import gemini_schema
from gateway.translate.history import chat_messages_for_openai, responses_input_for_openai
from gateway.translate.responses import chat_request_to_responses

SIG = "CiQB0e2Kb7rJpZ4m+9w/KxvQ3dJ8sQfA1xT6bR2nL0cH5uYgEhwKGgE=" * 2
LONG = encode_tool_call_id("call_0123456789abcdef01234567", SIG)


def gemini_history() -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "reasoning_content": "thinking",
         "extra_content": {"google": {"thought_signature": SIG}},
         "tool_calls": [{"id": LONG, "type": "function",
                         "function": {"name": "weather", "arguments": "{}"},
                         "extra_content": {"google": {"thought_signature": SIG}}}]},
        {"role": "tool", "tool_call_id": LONG, "content": "sunny"},
    ]  # fmt: skip


def test_gemini_history_goes_to_openai_chat_with_short_ids_and_no_gemini_fields() -> None:
    assert len(LONG) > 40
    out = chat_messages_for_openai(gemini_history())
    call = out[1]["tool_calls"][0]
    assert call == {"id": "call_0123456789abcdef01234567", "type": "function",
                    "function": {"name": "weather", "arguments": "{}"}}  # fmt: skip
    assert out[1].keys() == {"role", "content", "tool_calls"}
    assert out[2]["tool_call_id"] == call["id"]


def test_plain_history_is_not_copied() -> None:
    messages = [{"role": "user", "content": "hi"}]
    assert chat_messages_for_openai(messages) is messages


def test_gemini_history_goes_to_openai_responses_with_short_call_ids() -> None:
    body = chat_request_to_responses({"model": "m", "messages": gemini_history()})
    calls = [i for i in body["input"] if i["type"] in ("function_call", "function_call_output")]
    assert {i["call_id"] for i in calls} == {"call_0123456789abcdef01234567"}
    assert all("extra_content" not in i for i in body["input"])
    items = [{"type": "function_call", "id": "fc_" + LONG[5:], "call_id": LONG, "name": "w",
              "arguments": "{}"}, {"type": "function_call_output", "call_id": LONG, "output": "x"}]  # fmt: skip
    fixed = responses_input_for_openai(items)
    assert [i["call_id"] for i in fixed] == ["call_0123456789abcdef01234567"] * 2
    assert fixed[0]["id"] == "fc_0123456789abcdef01234567"


def _decls(tools: list[dict[str, Any]], choice: Any) -> list[dict[str, Any]]:
    body = {"messages": [{"role": "user", "content": "x"}], "tools": tools, "tool_choice": choice}
    decls: list[dict[str, Any]] = chat_to_generate_content(body)["tools"][0]["functionDeclarations"]
    return decls


def test_mode_any_always_sends_parameters() -> None:
    tools = [{"type": "function", "function": {"name": "ping"}},
             {"type": "function", "function": {"name": "pong", "parameters": {"type": "object"}}}]  # fmt: skip
    for choice in ("required", {"type": "function", "function": {"name": "ping"}}):
        assert [d["parameters"] for d in _decls(tools, choice)] == [
            {"type": "object", "properties": {}}
        ] * 2
    assert all("parameters" not in d for d in _decls(tools, "auto"))


def test_pydantic_any_and_tuples_get_type_and_items() -> None:
    schema = {"type": "object", "properties": {
        "anything": {},
        "described": {"description": "free form"},
        "pair": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}],
                 "minItems": 2, "maxItems": 2},
        "same": {"type": "array", "prefixItems": [{"type": "number"}, {"type": "number"}]},
        "bare_list": {"type": "array"},
        "untyped_object": {"properties": {"a": {"type": "string"}}},
    }}  # fmt: skip
    out = gemini_schema(schema, "p")["properties"]
    scalars = [{"type": "string"}, {"type": "number"}, {"type": "integer"}, {"type": "boolean"},
               {"type": "array", "items": {"type": "string"}}]  # fmt: skip
    assert out["anything"] == {"anyOf": scalars}
    assert out["described"] == {"description": "free form", "anyOf": scalars}
    assert out["pair"] == {"type": "array", "minItems": 2, "maxItems": 2,
                           "items": {"anyOf": [{"type": "integer"}, {"type": "string"}]}}  # fmt: skip
    assert out["same"] == {"type": "array", "items": {"type": "number"}}
    assert out["bare_list"] == {"type": "array", "items": {"anyOf": scalars}}
    assert out["untyped_object"]["type"] == "object"


def test_zod_and_pydantic_constructs_gemini_has_no_field_for() -> None:
    schema = {"type": "object", "properties": {
        "kind": {"const": "circle"},
        "count": {"const": 3},
        "not_x": {"type": "string", "not": {"const": "x"}},
        "cond": {"type": "object", "properties": {"a": {"type": "string"}},
                 "if": {"properties": {"a": {"const": "1"}}}, "then": {"required": ["a"]}},
        "opt": {"anyOf": [{"type": "string"}, {"type": "integer"}], "description": "either"},
        "enum_ints": {"enum": [1, 2]},
    }}  # fmt: skip
    out = gemini_schema(schema, "p")["properties"]
    assert out["kind"] == {"type": "string", "enum": ["circle"]}
    assert out["count"] == {"type": "integer", "description": "Must be 3."}
    assert out["not_x"] == {"type": "string"}
    assert out["cond"] == {"type": "object", "properties": {"a": {"type": "string"}}}
    assert out["opt"] == {
        "anyOf": [{"type": "string"}, {"type": "integer"}],
        "description": "either",
    }
    assert out["enum_ints"] == {"type": "integer", "description": "Allowed values: 1, 2"}


def test_recursive_schema_goes_as_parameters_json_schema() -> None:
    tree = {"$defs": {"Node": {"type": "object", "properties": {
        "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}}}, "$ref": "#/$defs/Node"}  # fmt: skip
    decl = _decls([{"type": "function", "function": {"name": "t", "parameters": tree}}], "auto")[0]
    assert decl == {"name": "t", "parametersJsonSchema": tree}
