"""Anthropic Messages: ``POST /v1/messages`` (``x-api-key`` and ``anthropic-version`` headers) and the
Anthropic flavour of ``GET /v1/models``.

Structured output arrives in one of two forms, both answered: ``output_format`` (or
``output_config.format``) ``{"type": "json_schema", "schema": ...}`` gets a text block holding the JSON;
a forced tool (``tool_choice`` ``{"type": "tool", "name": ...}`` or ``{"type": "any"}``) gets a ``tool_use``
block whose ``input`` follows the tool's ``input_schema`` (``stop_reason: "tool_use"``). A scripted answer
that is not a JSON object (a string, invalid JSON) comes back as a text block even then."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from sandbox.llm.core import ApiError, Ask, OutputSpec, Reply, message_text
from sandbox.llm.frontend import Frontend, bearer, new_id, optional_number, require_int
from sandbox.llm.schema import SchemaError, check_schema

_ERROR_TYPES = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "not_found_error",
    "timeout": "api_error",
    "rate_limit": "rate_limit_error",
    "server": "api_error",
    "overloaded": "overloaded_error",
}


class AnthropicFrontend(Frontend):
    provider = "anthropic"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self.handle)
        app.router.add_post("/v1/messages/count_tokens", self.count_tokens)

    def authenticate(self, request: web.Request) -> None:
        if not self.server.require_auth:
            return
        key = request.headers.get("x-api-key") or bearer(request)
        if not key:
            raise ApiError(401, "x-api-key header is required")
        if key not in self.keys():
            raise ApiError(401, "invalid x-api-key")

    def _check_version(self, request: web.Request) -> None:
        if not request.headers.get("anthropic-version"):
            raise ApiError(400, "anthropic-version: header is required")

    async def list_models(self, request: web.Request) -> web.Response:
        try:
            self.authenticate(request)
        except ApiError as error:
            return self.error_response(error)
        data = [
            {"type": "model", "id": name, "display_name": name, "created_at": "2025-01-01T00:00:00Z"}
            for name in self.server.model_names("anthropic")
        ]
        return web.json_response(
            {
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
        )

    async def count_tokens(self, request: web.Request) -> web.Response:
        try:
            body = await self.read_body(request)
            self.authenticate(request)
            body.setdefault("max_tokens", 1)
            ask, _ = self.parse(request, body, self.model_of(request, body))
        except ApiError as error:
            return self.error_response(error)
        reply = self.answer(ask, None)
        return web.json_response({"input_tokens": reply.prompt_tokens})

    def parse(
        self, request: web.Request, body: dict[str, Any], model: str
    ) -> tuple[Ask, dict[str, Any] | None]:
        self._check_version(request)
        if not model:
            raise ApiError(400, "model: Field required")
        if "max_tokens" not in body:
            raise ApiError(400, "max_tokens: Field required")
        max_tokens = require_int(body["max_tokens"], "max_tokens")
        if body.get("stream"):
            raise ApiError(400, "stream: streaming is not supported by the sandbox")
        optional_number(body, "temperature", 0, 1)
        messages: list[dict[str, str]] = []
        system = body.get("system")
        if system is not None:
            if not isinstance(system, str | list):
                raise ApiError(400, "system: Input should be a valid string or a list of text blocks")
            messages.append({"role": "system", "content": message_text(system)})
        raw = body.get("messages")
        if not isinstance(raw, list) or not raw:
            raise ApiError(400, "messages: at least one message is required")
        for i, message in enumerate(raw):
            if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
                raise ApiError(400, f"messages.{i}.role: Input should be 'user' or 'assistant'")
            content = message.get("content")
            if not isinstance(content, str | list):
                raise ApiError(400, f"messages.{i}.content: Field required")
            if isinstance(content, list):
                for j, block in enumerate(content):
                    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                        raise ApiError(400, f"messages.{i}.content.{j}.type: Field required")
            messages.append({"role": str(message["role"]), "content": message_text(content)})

        output, constraint = self._output(body)
        extra = json.dumps(output.schema) if output.schema is not None else ""
        if body.get("tools"):
            extra += json.dumps(body["tools"])
        return Ask(
            "anthropic", model, messages, output, max_tokens=max_tokens, extra_prompt=extra
        ), constraint

    def _output(self, body: dict[str, Any]) -> tuple[OutputSpec, dict[str, Any] | None]:
        constraint: dict[str, Any] = {}
        output = OutputSpec()
        fmt = body.get("output_format")
        config = body.get("output_config")
        if fmt is not None:
            constraint["output_format"] = fmt
        if isinstance(config, dict) and config.get("format") is not None:
            constraint["output_config"] = config
            fmt = config["format"]
        if fmt is not None:
            if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
                raise ApiError(400, "output_format.type: Input should be 'json_schema'")
            schema = fmt.get("schema")
            try:
                check_schema(schema)
            except SchemaError as exc:
                raise ApiError(400, f"output_format.schema: {exc}") from None
            output = OutputSpec("json", schema, strict=True)

        tools = body.get("tools")
        if tools is not None:
            constraint["tools"] = tools
            if "tool_choice" in body:
                constraint["tool_choice"] = body["tool_choice"]
            forced = self._forced_tool(tools, body.get("tool_choice"))
            if forced is not None:
                output = forced
        return output, constraint or None

    def _forced_tool(self, tools: Any, choice: Any) -> OutputSpec | None:
        if not isinstance(tools, list):
            raise ApiError(400, "tools: Input should be a valid list")
        schemas: dict[str, dict[str, Any]] = {}
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
                raise ApiError(400, f"tools.{i}.name: Field required")
            if "type" in tool and tool["type"] not in ("custom", None) and "input_schema" not in tool:
                continue
            schema = tool.get("input_schema")
            if not isinstance(schema, dict) or schema.get("type") != "object":
                raise ApiError(400, f"tools.{i}.input_schema.type: Input should be 'object'")
            schemas[tool["name"]] = schema
        if choice is None:
            return None
        if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
            raise ApiError(400, "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
        if choice["type"] == "tool":
            name = choice.get("name")
            if name not in schemas:
                raise ApiError(400, f"tool_choice.name: tool {name!r} is not among the tools")
        elif choice["type"] == "any" and schemas:
            name = next(iter(schemas))
        else:
            return None
        return OutputSpec("tool", schemas[str(name)], str(name))

    def render(self, ask: Ask, reply: Reply) -> dict[str, Any]:
        content: list[dict[str, Any]]
        if reply.tool_input is not None:
            content = [
                {
                    "type": "tool_use",
                    "id": new_id("toolu_"),
                    "name": reply.tool_name,
                    "input": reply.tool_input,
                }
            ]
        else:
            content = [{"type": "text", "text": reply.text or ""}]
        stop = {"stop": "end_turn", "length": "max_tokens", "tool": "tool_use"}[reply.finish]
        return {
            "id": new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": ask.model,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {
                "input_tokens": reply.prompt_tokens,
                "output_tokens": reply.completion_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "service_tier": "standard",
            },
        }

    def error_body(self, error: ApiError) -> dict[str, Any]:
        return {
            "type": "error",
            "error": {"type": _ERROR_TYPES[error.kind], "message": error.message},
            "request_id": new_id("req_"),
        }

    def response_headers(self) -> dict[str, str]:
        return {"request-id": new_id("req_")}
