"""A practical subset of JSON Schema: build an instance that follows a schema, validate an instance, derive
one that breaks it, and check OpenAI's strict-mode rules. Gemini's OpenAPI-style schemas (upper-case types,
``nullable``) are normalised first.

Supported keywords: ``type`` (also lists), ``enum``, ``const``, ``properties``, ``required``,
``additionalProperties`` (bool or schema), ``items``, ``minItems``/``maxItems``, ``minimum``/``maximum``,
``exclusiveMinimum``/``exclusiveMaximum``, ``multipleOf`` (integers), ``minLength``/``maxLength``,
``pattern`` (validation only), ``anyOf``/``oneOf``/``allOf``, ``$ref`` to ``#/$defs/...`` or
``#/definitions/...``, ``nullable`` and ``format`` ``date-time``/``date`` (generation only).
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable
from typing import Any

Schema = dict[str, Any]
# Called with (property name, property schema); returns a preferred value or None.
Suggest = Callable[[str, Schema], Any]

_TYPE_NAMES = {"object", "array", "string", "number", "integer", "boolean", "null"}


class SchemaError(ValueError):
    """The schema itself is malformed or uses a reference that cannot be resolved."""


def normalize(schema: Any) -> Any:
    """A copy with Gemini/OpenAPI spellings turned into JSON Schema: ``"OBJECT"`` -> ``"object"``,
    ``nullable: true`` -> a ``null`` member of ``type``; ``propertyOrdering`` dropped."""
    if isinstance(schema, list):
        return [normalize(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "propertyOrdering":
            continue
        if key == "type":
            out[key] = [v.lower() for v in value] if isinstance(value, list) else str(value).lower()
        elif key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            out[key] = {name: normalize(sub) for name, sub in value.items()}
        else:
            out[key] = normalize(value)
    if out.pop("nullable", False) is True and "type" in out:
        types = out["type"] if isinstance(out["type"], list) else [out["type"]]
        out["type"] = [*types, "null"] if "null" not in types else types
    return out


def _types(schema: Schema) -> list[str]:
    kind = schema.get("type")
    if kind is None:
        if "properties" in schema:
            return ["object"]
        if "items" in schema:
            return ["array"]
        return []
    return list(kind) if isinstance(kind, list) else [kind]


class _Resolver:
    def __init__(self, root: Schema) -> None:
        self.root = root

    def resolve(self, schema: Schema, depth: int = 0) -> Schema:
        while isinstance(schema, dict) and "$ref" in schema:
            ref = schema["$ref"]
            if not isinstance(ref, str) or not ref.startswith("#"):
                raise SchemaError(f"unsupported $ref: {ref!r}")
            node: Any = self.root
            for part in [p for p in ref[1:].split("/") if p]:
                part = part.replace("~1", "/").replace("~0", "~")
                if not isinstance(node, dict) or part not in node:
                    raise SchemaError(f"unresolvable $ref: {ref}")
                node = node[part]
            if depth > 32:
                raise SchemaError("$ref nesting is too deep")
            depth += 1
            schema = node
        return schema


# -- validation ----------------------------------------------------------------------------------------------
def _is_type(value: Any, kind: str) -> bool:
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return False


def validate(instance: Any, schema: Schema) -> list[str]:
    """Every violation as ``"<path>: <message>"``; an empty list means the instance is valid."""
    root = normalize(schema)
    errors: list[str] = []
    _validate(instance, root, _Resolver(root), "$", errors)
    return errors


def is_valid(instance: Any, schema: Schema) -> bool:
    return not validate(instance, schema)


def _validate(value: Any, schema: Any, res: _Resolver, path: str, errors: list[str]) -> None:
    if schema is True or schema == {}:
        return
    if schema is False:
        errors.append(f"{path}: no value is allowed here")
        return
    schema = res.resolve(schema)
    types = _types(schema)
    if types and not any(_is_type(value, t) for t in types):
        errors.append(f"{path}: expected {' or '.join(types)}, got {type(value).__name__}")
        return
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path}: must be {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} is not one of {schema['enum']!r}")
    for sub in schema.get("allOf", []):
        _validate(value, sub, res, path, errors)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            matches = 0
            for sub in schema[key]:
                sub_errors: list[str] = []
                _validate(value, sub, res, path, sub_errors)
                matches += not sub_errors
            if matches == 0 or (key == "oneOf" and matches > 1):
                errors.append(f"{path}: does not match {'exactly one' if key == 'oneOf' else 'any'} of {key}")
    if isinstance(value, dict):
        _validate_object(value, schema, res, path, errors)
    elif isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append(f"{path}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{path}: more than {schema['maxItems']} items")
        if isinstance(schema.get("items"), dict | bool):
            for i, item in enumerate(value):
                _validate(item, schema["items"], res, f"{path}[{i}]", errors)
    elif isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append(f"{path}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{path}: longer than {schema['maxLength']}")
        if "pattern" in schema and re.search(schema["pattern"], value) is None:
            errors.append(f"{path}: does not match {schema['pattern']!r}")
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _validate_number(value, schema, path, errors)


def _validate_object(
    value: dict[str, Any], schema: Schema, res: _Resolver, path: str, errors: list[str]
) -> None:
    props: dict[str, Any] = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in value:
            errors.append(f"{path}: missing required property {name!r}")
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in props:
            _validate(item, props[name], res, f"{path}.{name}", errors)
        elif extra is False:
            errors.append(f"{path}: unexpected property {name!r}")
        elif isinstance(extra, dict):
            _validate(item, extra, res, f"{path}.{name}", errors)


def _validate_number(value: float, schema: Schema, path: str, errors: list[str]) -> None:
    if "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{path}: {value} is below the minimum {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        errors.append(f"{path}: {value} is above the maximum {schema['maximum']}")
    low, high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if isinstance(low, int | float) and not isinstance(low, bool) and value <= low:
        errors.append(f"{path}: {value} is not above {low}")
    if isinstance(high, int | float) and not isinstance(high, bool) and value >= high:
        errors.append(f"{path}: {value} is not below {high}")
    step = schema.get("multipleOf")
    if isinstance(step, int | float) and step > 0 and not math.isclose(value / step, round(value / step)):
        errors.append(f"{path}: {value} is not a multiple of {step}")


# -- generation ----------------------------------------------------------------------------------------------
def generate(schema: Schema, suggest: Suggest | None = None) -> Any:
    """An instance that follows ``schema``. For each object property ``suggest(name, property_schema)`` may
    offer a value; it is used when it fits (strings are matched to ``enum`` members case-insensitively,
    numbers clamped to the bounds), otherwise a plain value is built from the schema."""
    root = normalize(schema)
    return _Generator(root, suggest).build(root, "", 0)


class _Generator:
    def __init__(self, root: Schema, suggest: Suggest | None) -> None:
        self.res = _Resolver(root)
        self.suggest = suggest

    def build(self, schema: Any, name: str, depth: int) -> Any:
        if schema is True or schema == {} or not isinstance(schema, dict):
            return "sample"
        schema = self.res.resolve(schema)
        if depth > 12:
            return None
        if self.suggest is not None and name:
            offered = self.suggest(name, schema)
            if offered is not None:
                fitted = self._fit(offered, schema)
                if fitted is not None:
                    return fitted
        if "const" in schema:
            return copy.deepcopy(schema["const"])
        if schema.get("enum"):
            return copy.deepcopy(schema["enum"][0])
        if "allOf" in schema:
            merged: Schema = {k: v for k, v in schema.items() if k != "allOf"}
            for sub in schema["allOf"]:
                sub = self.res.resolve(sub)
                for key, val in sub.items():
                    if key == "properties":
                        merged.setdefault("properties", {}).update(val)
                    elif key == "required":
                        merged["required"] = [*merged.get("required", []), *val]
                    else:
                        merged.setdefault(key, val)
            return self.build(merged, name, depth + 1)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = [self.res.resolve(s) for s in schema[key]]
                non_null = [s for s in options if _types(s) != ["null"]] or options
                return self.build(non_null[0], name, depth + 1)
        types = _types(schema)
        kind = next((t for t in types if t != "null"), types[0] if types else "string")
        return getattr(self, f"_build_{kind}", self._build_string)(schema, name, depth)

    def _fit(self, value: Any, schema: Schema) -> Any:
        if schema.get("enum"):
            if isinstance(value, str):
                for member in schema["enum"]:
                    if isinstance(member, str) and member.lower() == value.lower():
                        return member
            return value if value in schema["enum"] else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = _clamp(value, schema)
            if "integer" in _types(schema) and "number" not in _types(schema):
                value = round(value)
        if isinstance(value, str):
            if "maxLength" in schema:
                value = value[: schema["maxLength"]]
            if "minLength" in schema and len(value) < schema["minLength"]:
                value = value.ljust(schema["minLength"], ".")
        errors: list[str] = []
        _validate(value, schema, self.res, "$", errors)
        return None if errors else value

    def _build_object(self, schema: Schema, name: str, depth: int) -> dict[str, Any]:
        props: dict[str, Any] = schema.get("properties", {})
        return {key: self.build(sub, key, depth + 1) for key, sub in props.items()}

    def _build_array(self, schema: Schema, name: str, depth: int) -> list[Any]:
        count = max(int(schema.get("minItems", 1)), 1)
        if "maxItems" in schema:
            count = min(count, int(schema["maxItems"]))
        items = schema.get("items", {"type": "string"})
        return [self.build(items, name, depth + 1) for _ in range(count)]

    def _build_string(self, schema: Schema, name: str, depth: int) -> str:
        fmt = schema.get("format")
        text = {"date-time": "2025-01-01T00:00:00Z", "date": "2025-01-01"}.get(str(fmt), name or "sample")
        if "maxLength" in schema:
            text = text[: schema["maxLength"]]
        if len(text) < schema.get("minLength", 0):
            text = text.ljust(schema["minLength"], "x")
        return text

    def _build_number(self, schema: Schema, name: str, depth: int) -> float:
        return float(_clamp(0.5, schema))

    def _build_integer(self, schema: Schema, name: str, depth: int) -> int:
        value = math.ceil(_clamp(1, schema))
        high = schema.get("maximum")
        if isinstance(high, int | float) and value > high:
            value = math.floor(high)
        step = schema.get("multipleOf")
        if isinstance(step, int) and step > 0 and value % step:
            value += step - value % step
        return value

    def _build_boolean(self, schema: Schema, name: str, depth: int) -> bool:
        return False

    def _build_null(self, schema: Schema, name: str, depth: int) -> None:
        return None


def _clamp(value: float, schema: Schema) -> float:
    low, high = schema.get("minimum"), schema.get("maximum")
    ex_low, ex_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    step = 1 if "integer" in _types(schema) else 1e-6
    if isinstance(ex_low, int | float) and not isinstance(ex_low, bool):
        low = ex_low + step if low is None else max(low, ex_low + step)
    if isinstance(ex_high, int | float) and not isinstance(ex_high, bool):
        high = ex_high - step if high is None else min(high, ex_high - step)
    if isinstance(low, int | float) and value < low:
        value = low
    if isinstance(high, int | float) and value > high:
        value = high
    return value


# -- breaking a schema ---------------------------------------------------------------------------------------
def violate(schema: Schema, instance: Any) -> Any:
    """A copy of a valid ``instance`` changed so that it no longer follows ``schema``: an ``enum`` value
    replaced, a bound exceeded, a required property removed or, failing those, the wrong type at the top."""
    root = normalize(schema)
    res = _Resolver(root)
    top = res.resolve(root)
    if isinstance(instance, dict):
        props: dict[str, Any] = top.get("properties", {})
        edits: list[tuple[str, str, Any]] = []
        for name, sub in props.items():
            sub = res.resolve(sub) if isinstance(sub, dict) else {}
            if name in instance and sub.get("enum"):
                edits.append(("set", name, "not-" + str(instance[name])))
            if name in instance and isinstance(sub.get("maximum"), int | float):
                edits.append(("set", name, sub["maximum"] + 1))
        edits.extend(("drop", name, None) for name in top.get("required", []))
        if top.get("additionalProperties") is False:
            edits.append(("set", "unexpected_field", True))
        for action, name, value in edits:
            broken = copy.deepcopy(instance)
            if action == "set":
                broken[name] = value
            else:
                broken.pop(name, None)
            if not is_valid(broken, root):
                return broken
    for candidate in (["not", "an", "object"], "not the expected value", 12345, None):
        if not is_valid(candidate, root):
            return candidate
    return ["unconstrained schema"]


# -- OpenAI strict mode --------------------------------------------------------------------------------------
def strict_schema_problems(schema: Schema) -> list[str]:
    """What OpenAI refuses in a ``strict: true`` schema: every object needs ``additionalProperties: false``
    and all of its properties listed in ``required``; the root must be an object."""
    problems: list[str] = []
    root = schema
    if _types(root) != ["object"] and "anyOf" not in root and "$ref" not in root:
        problems.append("the root schema must be of type 'object'")
    _strict_walk(root, (), problems)
    return problems


def _strict_walk(schema: Any, context: tuple[str, ...], problems: list[str]) -> None:
    if not isinstance(schema, dict):
        return
    where = f"context=({', '.join(repr(c) for c in context)})"
    if "object" in _types(schema) or "properties" in schema:
        if schema.get("additionalProperties", None) is not False:
            problems.append(f"In {where}, 'additionalProperties' is required to be supplied and to be false.")
        props = schema.get("properties", {})
        missing = [name for name in props if name not in schema.get("required", [])]
        if missing:
            problems.append(
                f"In {where}, 'required' is required to be supplied and to be an array including every key "
                f"in properties. Missing {missing[0]!r}."
            )
        for name, sub in props.items():
            _strict_walk(sub, (*context, "properties", name), problems)
    if isinstance(schema.get("items"), dict):
        _strict_walk(schema["items"], (*context, "items"), problems)
    for key in ("anyOf", "allOf", "oneOf"):
        for i, sub in enumerate(schema.get(key, [])):
            _strict_walk(sub, (*context, key, str(i)), problems)
    for key in ("$defs", "definitions"):
        for name, sub in schema.get(key, {}).items():
            _strict_walk(sub, (*context, key, name), problems)


def check_schema(schema: Any) -> None:
    """Raise :class:`SchemaError` when ``schema`` is not an object or names an unknown type."""
    if not isinstance(schema, dict):
        raise SchemaError("a schema must be a JSON object")
    for kind in _types(normalize(schema)):
        if kind not in _TYPE_NAMES:
            raise SchemaError(f"unknown type {kind!r}")
