"""Stripe's form encoding (``a[b][0][c]=v``, ``expand[]=x``) decoded into nested dicts and lists, and typed
accessors that raise Stripe's parameter errors."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from sandbox.stripe.errors import StripeError, invalid, missing_param, unknown_param

Params = dict[str, Any]
HASH_KEYS = frozenset({"metadata"})  # always hashes, even when every key looks like an index
_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")


def decode(text: str) -> Params:
    """Decode a form-encoded body or query string into nested dicts (hashes) and lists (arrays)."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        match = _KEY.match(key)
        if match is None:
            raise invalid(f"Invalid parameter name: {key}", param=key)
        parts = [match.group(1), *_PART.findall(match.group(2))]
        _assign(root, parts, value, key)
    return _listify(root, None)


def _assign(root: dict[str, Any], parts: list[str], value: str, key: str) -> None:
    node = root
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "":
            part = str(sum(1 for k in node if k.isdigit()))  # ``[]`` appends
        if last:
            if isinstance(node.get(part), dict):
                raise invalid("Invalid hash", param=key)
            node[part] = value
            return
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise invalid("Invalid hash", param=key)
        node = child


def _listify(node: dict[str, Any], name: str | None) -> Any:
    converted = {k: (_listify(v, k) if isinstance(v, dict) else v) for k, v in node.items()}
    if name in HASH_KEYS or not converted or not all(k.isdigit() for k in converted):
        return converted
    return [converted[k] for k in sorted(converted, key=int)]


def check_known(params: Mapping[str, Any], allowed: Iterable[str], prefix: str = "") -> None:
    known = set(allowed)
    for key in params:
        if key not in known:
            raise unknown_param(f"{prefix}[{key}]" if prefix else key)


def get_hash(params: Mapping[str, Any], name: str, prefix: str = "") -> Params:
    value = params.get(name)
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise invalid("Invalid hash", param=_path(prefix, name))
    return value


def get_array(params: Mapping[str, Any], name: str, prefix: str = "") -> list[Any]:
    value = params.get(name)
    if value is None or value == "":
        return []
    if isinstance(value, dict):
        raise invalid("Invalid array", param=_path(prefix, name))
    if not isinstance(value, list):
        return [value]
    return value


def get_str(params: Mapping[str, Any], name: str, prefix: str = "", required: bool = False) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise missing_param(_path(prefix, name))
        return None
    if not isinstance(value, str):
        raise invalid(f"Invalid string: {value!r}", param=_path(prefix, name))
    return value


def get_int(
    params: Mapping[str, Any], name: str, prefix: str = "", required: bool = False, minimum: int | None = None
) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise missing_param(_path(prefix, name))
        return None
    if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value):
        raise invalid(f"Invalid integer: {value}", param=_path(prefix, name))
    number = int(value)
    if minimum is not None and number < minimum:
        raise invalid(f"This value must be greater than or equal to {minimum}.", param=_path(prefix, name))
    return number


def get_bool(params: Mapping[str, Any], name: str, prefix: str = "") -> bool | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if value not in ("true", "false"):
        raise invalid(f"Invalid boolean: {value}", param=_path(prefix, name))
    return value == "true"


def get_enum(
    params: Mapping[str, Any], name: str, choices: Iterable[str], prefix: str = "", required: bool = False
) -> str | None:
    value = get_str(params, name, prefix, required)
    options = list(choices)
    if value is not None and value not in options:
        raise StripeError(f"Invalid {name}: must be one of {', '.join(options)}", param=_path(prefix, name))
    return value


def metadata_update(
    current: Mapping[str, str], params: Mapping[str, Any], prefix: str = ""
) -> dict[str, str]:
    """Apply a ``metadata`` parameter: keys are merged, an empty value removes a key, ``metadata=`` clears."""
    if "metadata" not in params:
        return dict(current)
    raw = params["metadata"]
    if raw == "":
        return {}
    if not isinstance(raw, dict):
        raise invalid("Invalid hash", param=_path(prefix, "metadata"))
    result = dict(current)
    for key, value in raw.items():
        if not isinstance(value, str):
            raise invalid("Invalid metadata value", param=_path(prefix, f"metadata[{key}]"))
        if len(key) > 40:
            raise invalid(
                "Metadata keys can have up to 40 characters.", param=_path(prefix, f"metadata[{key}]")
            )
        if len(value) > 500:
            raise invalid(
                "Metadata values can have up to 500 characters, but you passed in a value that is "
                f"{len(value)} characters.",
                param=_path(prefix, f"metadata[{key}]"),
            )
        if value == "":
            result.pop(key, None)
        else:
            result[key] = value
    if len(result) > 50:
        raise invalid("You can have at most 50 metadata keys.", param=_path(prefix, "metadata"))
    return result


def _path(prefix: str, name: str) -> str:
    if not prefix:
        return name
    head, _, rest = name.partition("[")
    return f"{prefix}[{head}]" + (f"[{rest}" if rest else "")
