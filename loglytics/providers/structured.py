"""Structured output: a pydantic model's JSON schema in, a validated instance out.

Why bounded schemas: servers turn the schema into a grammar, and a string
without `maxLength` or an array without `maxItems` lets a small model ramble
until `max_tokens`, which truncates the JSON and wastes the tenant's budget.
`json_schema_for` refuses such models; decorate output models with
`@structured_output` so the refusal happens when the module is imported.

Why inline `$ref`s: llama.cpp and older vLLM/outlines grammars handle local
references unevenly; a self-contained schema works everywhere.

Never trust the model: `parse_output` accepts only what validates, and
`repair_messages` builds the one follow-up that asks for a corrected reply.
"""

from __future__ import annotations

import copy
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from loglytics.providers.errors import SchemaBoundsError

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T", bound=type[BaseModel])

MAX_ERRORS_SHOWN = 5
MAX_BAD_REPLY_CHARS = 2000


def _resolve(node: Any, defs: dict[str, Any], trail: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_resolve(item, defs, trail) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if not ref.startswith("#/$defs/") or name not in defs:
            raise SchemaBoundsError(f"unsupported $ref {ref!r}")
        if name in trail:
            raise SchemaBoundsError(f"recursive model {name!r} cannot be bounded")
        target = _resolve(defs[name], defs, (*trail, name))
        extra = {k: _resolve(v, defs, trail) for k, v in node.items() if k != "$ref"}
        return {**target, **extra}
    return {k: _resolve(v, defs, trail) for k, v in node.items() if k != "$defs"}


def _types(node: dict[str, Any]) -> set[str]:
    kind = node.get("type")
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return {str(k) for k in kind}
    return set()


def _check(node: Any, path: str, problems: list[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _check(item, path, problems)
        return
    if not isinstance(node, dict):
        return
    kinds = _types(node)
    bounded_by_value = "enum" in node or "const" in node
    if "string" in kinds and "maxLength" not in node and not bounded_by_value:
        problems.append(f"{path or '<root>'}: string without maxLength")
    if "array" in kinds and "maxItems" not in node:
        problems.append(f"{path or '<root>'}: array without maxItems")
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and "maxProperties" not in node:
        problems.append(f"{path or '<root>'}: open object (dict) without maxProperties")
    if "object" in kinds and "properties" in node and "additionalProperties" not in node:
        node["additionalProperties"] = False  # strict mode requires it; models may not invent keys
    for key, value in node.items():
        if key == "properties" and isinstance(value, dict):
            for prop, sub in value.items():
                _check(sub, f"{path}.{prop}" if path else prop, problems)
        elif key in ("items", "prefixItems", "anyOf", "oneOf", "allOf", "additionalProperties"):
            _check(value, f"{path}[]" if key in ("items", "prefixItems") else path, problems)


def json_schema_for(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema, self-contained and bounded, or `SchemaBoundsError`."""
    raw = model.model_json_schema()
    defs = raw.get("$defs", {})
    schema = _resolve(copy.deepcopy(raw), defs, ())
    problems: list[str] = []
    _check(schema, "", problems)
    if problems:
        raise SchemaBoundsError(f"{model.__name__}: " + "; ".join(problems))
    if not isinstance(schema, dict):
        raise SchemaBoundsError(f"{model.__name__}: schema is not an object")
    return schema


def structured_output(model: T) -> T:
    """Class decorator: check the output model's bounds when its module is imported."""
    json_schema_for(model)
    return model


def _strip(text: str) -> str:
    """The JSON value in a reply: code fences and chatter around the outermost braces removed."""
    body = text.strip()
    if body.startswith("```"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
        body = body.rsplit("```", 1)[0]
    start, end = body.find("{"), body.rfind("}")
    if start != -1 and end > start:
        return body[start : end + 1]
    return body


def parse_output(model: type[M], text: str) -> M:
    """Validate a reply against the model; raises `ValueError` with a short reason."""
    try:
        return model.model_validate_json(_strip(text))
    except ValidationError as exc:
        reasons = []
        for err in exc.errors()[:MAX_ERRORS_SHOWN]:
            loc = ".".join(str(p) for p in err["loc"]) or "<root>"
            reasons.append(f"{loc}: {err['msg']}")
        raise ValueError("; ".join(reasons)) from None


def repair_messages(
    messages: list[dict[str, str]], bad_reply: str, error: str, schema: dict[str, Any]
) -> list[dict[str, str]]:
    """The conversation plus the invalid reply and a request for corrected JSON."""
    return [
        *messages,
        {"role": "assistant", "content": bad_reply[:MAX_BAD_REPLY_CHARS]},
        {
            "role": "user",
            "content": (
                f"That reply is not valid: {error}. Reply again with only one JSON object "
                "that matches this JSON schema, no other text. Keep strings short.\n"
                + orjson.dumps(schema).decode()
            ),
        },
    ]
