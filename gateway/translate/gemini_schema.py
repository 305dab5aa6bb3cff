"""JSON Schema as clients write it (pydantic, zod, hand-written) -> Gemini's `Schema`.

Gemini's function `parameters` take the v1beta `Schema` message (content.proto), an
OpenAPI subset; the live API refuses what the message lacks ("Unknown name ... Cannot
find field": additionalProperties, $schema, const, not, if/then, prefixItems, ...), and
it enforces rules the message does not show: `type` is required unless `anyOf` is given
(pydantic writes `{}` for `Any`), and an ARRAY needs `items` ("items: missing field";
pydantic writes tuples as `prefixItems`). So:

- local `$ref`s are inlined, `allOf` members merged, `oneOf` becomes `anyOf`;
- `null` in a type list, an `anyOf` or an `enum` becomes `nullable`;
- `const` becomes a one-value `enum` (strings) or a typed value with a hint;
- an untyped node gets the type its keywords imply (`properties` -> object, `items` ->
  array, string `enum` -> string), and a node that says nothing (`{}`, `true`) becomes
  an `anyOf` of the JSON scalars and a string array, which is what "any value" can be;
- a tuple's `prefixItems` become `items: {anyOf: [...]}` (one schema when they agree);
- `not`, `if`/`then`/`else`, `additionalProperties`, `patternProperties`, `examples`,
  `default`, `$schema`/`$id` and unknown formats are left out: they only guide.

A recursive `$ref` cannot be inlined: `RecursiveSchema` says so, and the caller sends the
client's schema as `parametersJsonSchema` instead, which takes real JSON Schema.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import BadRequest

_FORMATS = {
    "string": {"enum", "date-time"},
    "number": {"float", "double"},
    "integer": {"int32", "int64"},
}
_NUMERIC_KEYS = ("minimum", "maximum", "minItems", "maxItems")
# What "any JSON value" can be in Gemini's Schema (an OBJECT without properties is
# refused: "should be non-empty for OBJECT type").
_ANY: list[dict[str, Any]] = [
    {"type": "string"},
    {"type": "number"},
    {"type": "integer"},
    {"type": "boolean"},
    {"type": "array", "items": {"type": "string"}},
]
_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}


class RecursiveSchema(BadRequest):
    """A schema that refers to itself: it has no finite inlined form."""


def gemini_schema(schema: dict[str, Any], where: str) -> dict[str, Any]:
    """A JSON Schema turned into Gemini's OpenAPI-subset `Schema`; local $refs are inlined."""
    defs = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
    return _clean(schema, defs, where, ())


def _any() -> dict[str, Any]:
    return {"anyOf": [dict(s) for s in _ANY]}


def _hint(out: dict[str, Any], text: str) -> None:
    out["description"] = (out.get("description", "") + " " + text).strip()


def _clean(node: Any, defs: dict[str, Any], where: str, seen: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(node, dict):
        return _any()  # `true` (or a stray value): anything goes
    ref = node.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if not ref.startswith("#/") or name not in defs:
            raise BadRequest(f"{where}: cannot resolve $ref {ref!r}", param=where)
        if name in seen:
            raise RecursiveSchema(
                f"{where}: recursive $ref {ref!r} cannot be sent to Gemini", param=where
            )
        rest = {k: v for k, v in node.items() if k != "$ref"}
        return _clean({**defs[name], **rest}, defs, where, (*seen, name))
    out: dict[str, Any] = {}
    for sub in node.get("allOf") or []:  # pydantic wraps refs in allOf; merge members
        out.update(_clean(sub, defs, where, seen))
    nullable = node.get("nullable") is True
    typ = node.get("type")
    if isinstance(typ, list):  # ["string", "null"] -> string + nullable
        kinds = [t for t in typ if t != "null"]
        nullable = nullable or len(kinds) < len(typ)
        typ = kinds[0] if len(kinds) == 1 else None
        if len(kinds) > 1:
            out["anyOf"] = [{"type": t} for t in kinds]
    elif typ == "null":
        typ, nullable = None, True
    alternatives = node.get("anyOf", node.get("oneOf"))
    if isinstance(alternatives, list):
        subs = [s for s in alternatives if not (isinstance(s, dict) and s.get("type") == "null")]
        nullable = nullable or len(subs) < len(alternatives)
        cleaned = [_clean(s, defs, where, seen) for s in subs]
        if len(cleaned) == 1:  # Optional[X] -> X, nullable
            out.update(cleaned[0])
        elif cleaned:
            out["anyOf"] = cleaned
    for key in ("title", "description"):
        if isinstance(node.get(key), str):
            out[key] = node[key]
    if "const" in node:
        value = node["const"]
        if isinstance(value, str):
            out["enum"], typ = [value], "string"
        elif value is None:
            nullable = True
        else:
            typ = typ or _JSON_TYPES.get(type(value))
            _hint(out, "Must be " + orjson.dumps(value).decode() + ".")
    if isinstance(typ, str):
        out["type"] = typ
    if isinstance(node.get("enum"), list):
        values = [v for v in node["enum"] if v is not None]
        nullable = nullable or len(values) < len(node["enum"])
        if out.get("type", "string") == "string" and all(isinstance(v, str) for v in values):
            out["type"], out["enum"] = "string", list(values)
        else:  # Gemini enums are strings only; keep the constraint as a hint
            if "type" not in out:
                value_types = {_JSON_TYPES.get(type(v)) for v in values}
                if len(value_types) == 1 and None not in value_types:
                    out["type"] = value_types.pop()
            _hint(out, "Allowed values: " + ", ".join(orjson.dumps(v).decode() for v in values))
    fmt = node.get("format")
    if isinstance(fmt, str) and fmt in _FORMATS.get(str(out.get("type")), set()):
        out["format"] = fmt
    for key in _NUMERIC_KEYS:
        if isinstance(node.get(key), int | float) and not isinstance(node.get(key), bool):
            out[key] = node[key]
    items = node.get("items")
    prefix = node.get("prefixItems")
    if isinstance(items, dict | bool) and items is not False:
        out["items"] = _clean(items, defs, f"{where}.items", seen)
    elif isinstance(prefix, list) and prefix:  # a tuple: each position's schema
        members = [_clean(p, defs, f"{where}.prefixItems", seen) for p in prefix]
        distinct = [m for i, m in enumerate(members) if m not in members[:i]]
        out["items"] = distinct[0] if len(distinct) == 1 else {"anyOf": distinct}
    props = node.get("properties")
    if isinstance(props, dict) and props:
        out["properties"] = {
            k: _clean(v, defs, f"{where}.properties.{k}", seen) for k, v in props.items()
        }
        required = [r for r in node.get("required") or [] if r in props]
        if required:
            out["required"] = required
        if isinstance(node.get("propertyOrdering"), list):
            out["propertyOrdering"] = node["propertyOrdering"]
    if "type" not in out and "anyOf" not in out:  # Gemini requires one or the other
        if "properties" in out:
            out["type"] = "object"
        elif "items" in out:
            out["type"] = "array"
        else:
            out.update(_any())
    if out.get("type") == "array" and "items" not in out:
        out["items"] = _any()
    if nullable:
        out["nullable"] = True
    return out
