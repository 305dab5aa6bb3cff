"""The Responses side of the fake OpenAI (tests/fakes/openai.py): the Response object
and its streamed events, field for field as the live API sends them, and the fake's
tokens and log probabilities, which chat answers use too."""

from __future__ import annotations

import time
from typing import Any


def response_object(
    body: dict[str, Any],
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None,
) -> dict[str, Any]:
    incomplete = {"reason": "max_output_tokens"} if status == "incomplete" else None
    return {
        "id": "resp_fake123",
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": incomplete,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": body["model"],
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools", []),
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": body.get("metadata") or {},
    }


def stream_events(
    body: dict[str, Any], output: list[dict[str, Any]], status: str, usage: dict[str, Any]
) -> list[dict[str, Any]]:
    """The Responses stream of `output`, event by event as the live API sends them."""
    events: list[dict[str, Any]] = []
    start = response_object(body, "in_progress", [], None)
    events.append({"type": "response.created", "response": start})
    events.append({"type": "response.in_progress", "response": start})
    for index, item in enumerate(output):
        if item["type"] == "reasoning":
            text = item["summary"][0]["text"]
            events.append(
                {
                    "type": "response.output_item.added",
                    "output_index": index,
                    "item": {**item, "summary": []},
                }
            )
            where = {"item_id": item["id"], "output_index": index, "summary_index": 0}
            events.append(
                {
                    "type": "response.reasoning_summary_part.added",
                    **where,
                    "part": {"type": "summary_text", "text": ""},
                }
            )
            events.append({"type": "response.reasoning_summary_text.delta", **where, "delta": text})
            events.append({"type": "response.reasoning_summary_text.done", **where, "text": text})
            events.append(
                {
                    "type": "response.reasoning_summary_part.done",
                    **where,
                    "part": {"type": "summary_text", "text": text},
                }
            )
        elif item["type"] == "message":
            text = item["content"][0]["text"]
            logprobs = item["content"][0]["logprobs"]
            events.append(
                {
                    "type": "response.output_item.added",
                    "output_index": index,
                    "item": {**item, "status": "in_progress", "content": []},
                }
            )
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            events.append(
                {
                    "type": "response.content_part.added",
                    "item_id": item["id"],
                    "output_index": index,
                    "content_index": 0,
                    "part": part,
                }
            )
            for i, word in enumerate(text.split(" ")):
                piece = word if i == 0 else " " + word
                delta_logprobs = [
                    {
                        "token": p["token"],
                        "logprob": p["logprob"],
                        "top_logprobs": [
                            {"token": t["token"], "logprob": t["logprob"]}
                            for t in p["top_logprobs"]
                        ],
                    }
                    for p in logprobs[i : i + 1]
                ]  # one token per word
                events.append(
                    {
                        "type": "response.output_text.delta",
                        "item_id": item["id"],
                        "output_index": index,
                        "content_index": 0,
                        "delta": piece,
                        "logprobs": delta_logprobs,
                    }
                )
            events.append(
                {
                    "type": "response.output_text.done",
                    "item_id": item["id"],
                    "output_index": index,
                    "content_index": 0,
                    "text": text,
                    "logprobs": logprobs,
                }
            )
            events.append(
                {
                    "type": "response.content_part.done",
                    "item_id": item["id"],
                    "output_index": index,
                    "content_index": 0,
                    "part": item["content"][0],
                }
            )
        else:
            events.append(
                {
                    "type": "response.output_item.added",
                    "output_index": index,
                    "item": {**item, "arguments": "", "status": "in_progress"},
                }
            )
            events.append(
                {
                    "type": "response.function_call_arguments.delta",
                    "item_id": item["id"],
                    "output_index": index,
                    "delta": item["arguments"],
                }
            )
            events.append(
                {
                    "type": "response.function_call_arguments.done",
                    "item_id": item["id"],
                    "output_index": index,
                    "name": item["name"],
                    "arguments": item["arguments"],
                }
            )
        events.append({"type": "response.output_item.done", "output_index": index, "item": item})
    terminal = "response.incomplete" if status == "incomplete" else "response.completed"
    events.append(
        {
            "type": terminal,
            "response": response_object(body, status, output, usage),
        }
    )
    for seq, event in enumerate(events):
        event["sequence_number"] = seq
    return events


def logprobs(tokens: list[str], top: int) -> list[dict[str, Any]]:
    return [
        {
            "token": t,
            "logprob": -0.25,
            "bytes": list(t.encode()),
            "top_logprobs": [{"token": t, "logprob": -0.25, "bytes": list(t.encode())}][:top],
        }
        for t in tokens
    ]


def tokens(text: str) -> list[str]:
    """The fake's tokenizer: words, each with the space before it."""
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]
