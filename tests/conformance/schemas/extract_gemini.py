"""Build a JSON Schema of the Gemini v1beta request bodies the gateway sends.

Google's generativelanguage v1beta discovery document could not be obtained for this
repository (it is not vendored by any stored client snapshot small enough to fetch, and
google-api-python-client's wheel leaves it out), so the schema is built from the same
source the discovery document is generated from: the v1beta protos, as published in
Google's own `google-ai-generativelanguage` package. Run it once per version, in a
scratch environment (it is never run by the tests):

    python -m venv /tmp/g && /tmp/g/bin/pip install google-ai-generativelanguage==0.12.1
    /tmp/g/bin/python tests/conformance/schemas/extract_gemini.py

Mapping (proto3 JSON): fields by their JSON (lowerCamel) names only; every message
refuses unknown fields, as the live API does ("Invalid JSON payload received. Unknown
name ..."); at most one member of a oneof; enums by name; 64-bit integers as integers
or decimal strings; bytes as base64 text; Struct/Value/ListValue as JSON.

The packaged descriptors carry no `google.api.field_behavior` options, so REQUIRED is
taken from the field comments of the same protos (`REQUIRED` below), and the path
parameter `model` is not required in a top-level body.
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path
from typing import Any

PACKAGE = "google-ai-generativelanguage"
PROTO_PACKAGE = "google.ai.generativelanguage.v1beta."
ROOTS = ("GenerateContentRequest", "BatchEmbedContentsRequest", "EmbedContentRequest")

# "Required." in the field comments of content.proto / generative_service.proto.
REQUIRED = {
    "GenerateContentRequest": ["contents"],
    "BatchEmbedContentsRequest": ["requests"],
    "EmbedContentRequest": ["model", "content"],
    "FunctionDeclaration": ["name"],
    "FunctionCall": ["name"],
    "FunctionResponse": ["name", "response"],
    "Blob": ["mimeType", "data"],
    "FileData": ["fileUri"],
    "Schema": [],
}
PATH_PARAMS = {"GenerateContentRequest": "model", "BatchEmbedContentsRequest": "model"}

_INT64 = {3, 4, 6, 16, 18}
_INT32 = {5, 7, 13, 15, 17}
_WELL_KNOWN: dict[str, Any] = {
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$"},
    "google.protobuf.Timestamp": {"type": "string"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Empty": {"type": "object", "additionalProperties": False},
}


def _short(full_name: str) -> str:
    return full_name.removeprefix(PROTO_PACKAGE).replace(".", "_")


def _scalar(field: Any) -> dict[str, Any]:
    kind = field.type
    if kind in (1, 2):
        return {"type": "number"}
    if kind in _INT64:
        return {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": r"^-?[0-9]+$"}]}
    if kind in _INT32:
        return {"type": "integer"}
    if kind == 8:
        return {"type": "boolean"}
    if kind == 9:
        return {"type": "string"}
    if kind == 12:
        return {"type": "string", "contentEncoding": "base64"}
    if kind == 14:
        return {"enum": [v.name for v in field.enum_type.values]}
    raise ValueError(f"unexpected field type {kind} for {field.full_name}")


class _Builder:
    def __init__(self) -> None:
        self.defs: dict[str, Any] = {}

    def ref(self, descriptor: Any) -> dict[str, Any]:
        if descriptor.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[descriptor.full_name])
        name = _short(descriptor.full_name)
        if name not in self.defs:
            self.defs[name] = {}  # placeholder: recursion (Schema.items) ends here
            self.defs[name] = self.message(descriptor)
        return {"$ref": f"#/$defs/{name}"}

    def value(self, field: Any) -> dict[str, Any]:
        if field.message_type is not None:
            if field.message_type.GetOptions().map_entry:
                value_field = field.message_type.fields_by_name["value"]
                return {"type": "object", "additionalProperties": self.value(value_field)}
            return self.ref(field.message_type)
        return _scalar(field)

    def message(self, descriptor: Any) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        for field in descriptor.fields:
            schema = self.value(field)
            is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
            if field.is_repeated and not is_map:
                schema = {"type": "array", "items": schema}
            properties[field.json_name] = schema
        short = _short(descriptor.full_name)
        out: dict[str, Any] = {
            "type": "object",
            "properties": properties,
            "additionalProperties": False,
        }
        required = REQUIRED.get(short)
        if required:
            out["required"] = list(required)
        exclusive = []
        for oneof in descriptor.oneofs:
            members = [f.json_name for f in oneof.fields]
            if oneof.name.startswith("_") and len(members) == 1:
                continue  # proto3 `optional`: a synthetic oneof of one field
            exclusive += [
                {"required": [a, b]} for i, a in enumerate(members) for b in members[i + 1 :]
            ]
        if exclusive:
            out["not"] = {"anyOf": exclusive}
        return out


def main() -> None:
    from google.ai.generativelanguage_v1beta.types import generative_service

    builder = _Builder()
    roots = {}
    for root in ROOTS:
        roots[root] = builder.ref(getattr(generative_service, root).meta.pb.DESCRIPTOR)
    for root, param in PATH_PARAMS.items():
        required = builder.defs[root].get("required", [])
        builder.defs[root]["required"] = [r for r in required if r != param]
    out = {
        "source": {
            "package": PACKAGE,
            "version": version(PACKAGE),
            "protos": [
                "google/ai/generativelanguage/v1beta/generative_service.proto",
                "google/ai/generativelanguage/v1beta/content.proto",
            ],
            "note": "built from the v1beta protos; see extract_gemini.py for why and how",
        },
        "roots": {k: v["$ref"] for k, v in roots.items()},
        "$defs": dict(sorted(builder.defs.items())),
    }
    target = Path(__file__).with_name("gemini.json")
    target.write_text(json.dumps(out, indent=1) + "\n")
    print(f"{target}: {len(out['$defs'])} messages from {PACKAGE} {out['source']['version']}")


if __name__ == "__main__":
    main()
