"""Calling the gateway over HTTP and reading back exactly what it sent: JSON bodies and
every SSE event, checked against the published answer schemas."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from gateway.translate.sse import SSEParser
from tests.conformance.spec import answer_errors


@dataclass
class Answer:
    status: int
    body: Any = None  # an unstreamed answer
    events: list[dict[str, Any]] = field(default_factory=list)  # a stream's data objects
    names: list[str | None] = field(default_factory=list)  # their `event:` lines
    done: bool = False  # a chat stream's `data: [DONE]`
    problems: list[str] = field(default_factory=list)


def call(base: str, path: str, body: dict[str, Any]) -> Answer:
    url = f"{base}/v1{path}"
    if not body.get("stream"):
        r = httpx.post(url, json=body, timeout=30)
        answer = Answer(r.status_code, r.json())
        kind = {"/chat/completions": "chat", "/responses": "response", "/embeddings": "embeddings"}[
            path
        ]
        answer.problems = answer_errors(kind if r.status_code == 200 else "error", answer.body)
        return answer
    with httpx.stream("POST", url, json=body, timeout=30) as r:
        answer = Answer(r.status_code)
        if r.status_code != 200:
            answer.body = orjson.loads(r.read())
            answer.problems = answer_errors("error", answer.body)
            return answer
        parser = SSEParser()
        for chunk in r.iter_bytes():
            for event in list(parser.feed(chunk)):
                if event.is_done:
                    answer.done = True
                    continue
                answer.events.append(event.json())
                answer.names.append(event.event)
    for n, data in enumerate(answer.events):
        if "error" in data and path == "/chat/completions":
            kind = "error"
        else:
            kind = "chunk" if path == "/chat/completions" else "event"
        answer.problems += [
            f"event {n} ({data.get('type', kind)}): {p}" for p in answer_errors(kind, data)
        ]
    return answer
