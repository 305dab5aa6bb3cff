"""Extract the component schemas the conformance tests need from OpenAI's OpenAPI description.

Run once when moving to a new version of the description (it is never run by the tests):

    git clone https://github.com/openai/openai-openapi && cd openai-openapi
    python tests/conformance/schemas/extract_openai.py openapi.json "$(git rev-parse HEAD)"

It keeps the named roots and every schema they reach through `$ref`, rewrites
`#/components/schemas/X` to `#/$defs/X` (OpenAPI 3.1 schemas are JSON Schema 2020-12
otherwise), and writes `openai.json` beside this file with the source recorded.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

# What the gateway answers (issue 14) and what it sends upstream (issue 19).
ROOTS = (
    "CreateChatCompletionResponse",
    "CreateChatCompletionStreamResponse",
    "Response",
    "ResponseStreamEvent",
    "CreateEmbeddingResponse",
    "ListModelsResponse",
    "ErrorResponse",
    "CreateChatCompletionRequest",
    "CreateResponse",
    "CreateEmbeddingRequest",
)
PREFIX = "#/components/schemas/"


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(PREFIX):
            found.add(ref[len(PREFIX) :])
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def _rewrite(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(PREFIX):
                out[key] = "#/$defs/" + value[len(PREFIX) :]
            elif key.startswith("x-oaiMeta") or key == "example" or key == "examples":
                continue  # documentation only; keeps the file small
            else:
                out[key] = _rewrite(value)
        return out
    if isinstance(node, list):
        return [_rewrite(v) for v in node]
    return node


def extract(document: dict[str, Any]) -> dict[str, Any]:
    schemas = document["components"]["schemas"]
    keep: set[str] = set()
    todo = list(ROOTS)
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep.add(name)
        found: set[str] = set()
        _refs(schemas[name], found)
        todo.extend(found - keep)
    return {name: _rewrite(schemas[name]) for name in sorted(keep)}


def main() -> None:
    path, commit = Path(sys.argv[1]), sys.argv[2]
    raw = path.read_bytes()
    document = json.loads(raw)
    out: dict[str, Any] = {
        "source": {
            "repository": "github.com/openai/openai-openapi",
            "path": "openapi.json",
            "commit": commit,
            "version": document["info"]["version"],
            "sha256": hashlib.sha256(raw).hexdigest(),
        },
        "roots": list(ROOTS),
        "$defs": extract(document),
    }
    target = Path(__file__).with_name("openai.json")
    target.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"{target}: {len(out['$defs'])} schemas from {out['source']['version']} @ {commit[:12]}")


if __name__ == "__main__":
    main()
