"""The control API (``/sandbox/api/...``): JSON over HTTP to script models and read the request log. Bodies
are JSON objects; GET takes query parameters. Answers are ``{"ok": true, "result": ...}`` or
``{"ok": false, "error": "..."}``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from aiohttp import web

from sandbox.llm.brain import vote_for_schema
from sandbox.llm.core import PROVIDERS
from sandbox.llm.schema import SchemaError
from sandbox.llm.script import MODES, ErrorScript, Mode

if TYPE_CHECKING:
    from sandbox.llm.server import LLMServer

Action = Callable[[dict[str, Any]], Awaitable[Any]]
PREFIX = "/sandbox/api"


class ControlError(Exception):
    pass


async def _body(request: web.Request) -> dict[str, Any]:
    data: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.body_exists:
        try:
            body = await request.json()
        except ValueError:
            raise ControlError("the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ControlError("the body must be a JSON object")
        data.update(body)
    return data


def _opt_int(data: dict[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ControlError(f"{name} must be an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ControlError(f"{name} must be an integer") from None


def _opt_float(data: dict[str, Any], name: str) -> float | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ControlError(f"{name} must be a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ControlError(f"{name} must be a number") from None


def _opt_str(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    return None if value is None or value == "" else str(value)


def _required_str(data: dict[str, Any], name: str) -> str:
    value = _opt_str(data, name)
    if value is None:
        raise ControlError(f"{name} is required")
    return value


def _error_script(value: Any) -> ErrorScript | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ControlError("error must be an object with status, retry_after, times and message")
    status = _opt_int(value, "status") or 500
    if not 400 <= status <= 599:
        raise ControlError("error.status must be an HTTP error status (400-599)")
    times = _opt_int(value, "times")
    if times is not None and times < 1:
        raise ControlError("error.times must be at least 1")
    return ErrorScript(status, _opt_float(value, "retry_after"), times, _opt_str(value, "message"))


def setup_control_routes(app: web.Application, server: LLMServer) -> None:
    def guarded(action: Action) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request) -> web.StreamResponse:
            try:
                result = await action(await _body(request))
            except (ControlError, ValueError, SchemaError) as exc:
                return web.json_response({"ok": False, "error": str(exc)}, status=400)
            return web.json_response({"ok": True, "result": result})

        return handler

    async def info(data: dict[str, Any]) -> Any:
        return server.info()

    async def script(data: dict[str, Any]) -> Any:
        model = _required_str(data, "model")
        mode = _opt_str(data, "mode")
        if mode is not None and mode not in MODES:
            raise ControlError(f"mode must be one of {', '.join(MODES)}")
        kwargs: dict[str, Any] = {}
        if "answer" in data:
            kwargs["answer"] = data["answer"]
        if "times" in data:
            kwargs["times"] = _opt_int(data, "times")
        if "error" in data:
            kwargs["error"] = _error_script(data["error"])
        result = server.script(
            model,
            mode=cast("Mode | None", mode),
            delay=_opt_float(data, "delay"),
            **kwargs,
        )
        return result.to_json()

    async def scripts(data: dict[str, Any]) -> Any:
        return [s.to_json() for s in server.scripts.all()]

    async def reset(data: dict[str, Any]) -> Any:
        server.reset(_opt_str(data, "model"))
        return {"scripts": [s.to_json() for s in server.scripts.all()]}

    async def requests(data: dict[str, Any]) -> Any:
        since = _opt_int(data, "since") or 0
        records = server.requests_for(_opt_str(data, "model"), _opt_str(data, "provider"))
        return [r.to_json() for r in records if r.id > since]

    async def reset_requests(data: dict[str, Any]) -> Any:
        server.clear_requests()
        return {}

    async def add_api_key(data: dict[str, Any]) -> Any:
        provider = _required_str(data, "provider")
        if provider not in PROVIDERS:
            raise ControlError(f"provider must be one of {', '.join(PROVIDERS)}")
        server.add_api_key(provider, _required_str(data, "key"))
        return {"api_keys": {p: sorted(k) for p, k in server.api_keys.items()}}

    async def vote(data: dict[str, Any]) -> Any:
        prompt = _required_str(data, "prompt")
        result = server.preview_vote(prompt, _opt_str(data, "model") or "")
        schema = data.get("schema")
        if schema is not None and not isinstance(schema, dict):
            raise ControlError("schema must be a JSON object")
        return {"vote": result.to_json(), "answer": vote_for_schema(result, schema)}

    routes: list[tuple[str, str, Action]] = [
        ("GET", "/info", info),
        ("POST", "/script", script),
        ("GET", "/scripts", scripts),
        ("POST", "/reset", reset),
        ("GET", "/requests", requests),
        ("POST", "/requests/reset", reset_requests),
        ("POST", "/api_keys", add_api_key),
        ("POST", "/vote", vote),
    ]
    for method, path, action in routes:
        app.router.add_route(method, PREFIX + path, guarded(action))
