"""Feed our frames to the official `openai` SDK's own stream parsing (shared by the tests)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import httpx2
import openai
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam, ParsedChatCompletion
from openai.types.responses import ParsedResponse, Response

from gateway.translate.sse import DONE, data_frame, event_frame


def sdk_client(body: bytes) -> openai.OpenAI:
    """An SDK client whose every request gets `body` back as an SSE stream."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    http_client = httpx2.Client(transport=httpx2.MockTransport(handler))
    return openai.OpenAI(
        api_key="test", base_url="http://gateway.test/v1", http_client=http_client, max_retries=0
    )


def _strip(value: Any) -> Any:
    """Drop what the SDK's stream helpers add on top of the wire objects."""
    if isinstance(value, dict):
        out = {k: _strip(v) for k, v in value.items() if k not in ("parsed", "parsed_arguments")}
        if "function" in out and "type" in out:
            out.pop("index", None)  # streamed tool calls remember their chunk index
        return out
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def normal_response(value: Any) -> dict[str, Any]:
    data = value if isinstance(value, dict) else value.model_dump(mode="json")
    return dict(_strip(Response.model_validate(_strip(data)).model_dump(mode="json")))


def normal_completion(value: Any) -> dict[str, Any]:
    data = value if isinstance(value, dict) else value.model_dump(mode="json")
    return dict(_strip(ChatCompletion.model_validate(_strip(data)).model_dump(mode="json")))


def sdk_final_response(
    events: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
) -> ParsedResponse[None]:
    body = b"".join(event_frame(event) for event in events)
    kwargs: dict[str, Any] = {"tools": tools} if tools else {}
    with sdk_client(body).responses.stream(model="m", input="x", **kwargs) as stream:
        seen = [event.type for event in stream]
        final = stream.get_final_response()
    assert seen == [event["type"] for event in events]
    return final


def sdk_final_completion(chunks: list[dict[str, Any]]) -> ParsedChatCompletion[None]:
    body = b"".join(data_frame(chunk) for chunk in chunks) + DONE
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "x"}]
    with sdk_client(body).chat.completions.stream(model="m", messages=messages) as stream:
        return stream.get_final_completion()


def check_event_sequence(events: list[dict[str, Any]]) -> None:
    """Invariants every Responses stream keeps, whatever produced it."""
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events[:2]] == ["response.created", "response.in_progress"]
    assert events[-1]["type"] in ("response.completed", "response.incomplete")
    ids: dict[int, str] = {}
    done: set[int] = set()
    texts: dict[tuple[Any, ...], str] = defaultdict(str)
    for event in events[2:-1]:
        index = event["output_index"]
        if event["type"] == "response.output_item.added":
            assert index not in ids
            ids[index] = event["item"]["id"]
            continue
        assert index in ids and index not in done, event
        if event["type"] == "response.output_item.done":
            assert event["item"]["id"] == ids[index]
            done.add(index)
            continue
        assert event["item_id"] == ids[index]
        key = (index, event.get("content_index"), event.get("summary_index"))
        if event["type"].endswith(".delta"):
            texts[key] += event["delta"]
        elif event["type"] in ("response.output_text.done", "response.reasoning_summary_text.done"):
            assert event["text"] == texts[key]
        elif event["type"] == "response.function_call_arguments.done":
            assert event["arguments"] == texts[key]
    assert done == set(ids) == set(range(len(ids)))
    final = events[-1]["response"]
    assert [item["id"] for item in final["output"]] == [ids[i] for i in range(len(ids))]
