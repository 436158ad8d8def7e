"""OpenAI Chat Completions: ``POST /v1/chat/completions`` (also ``/chat/completions``) and
``GET /v1/models``."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from aiohttp import web

from sandbox.llm.core import ApiError, Ask, OutputSpec, Reply, message_text
from sandbox.llm.frontend import Frontend, bearer, mask_key, new_id, optional_number, require_int
from sandbox.llm.schema import SchemaError, check_schema, strict_schema_problems

_ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_ERROR_TYPES = {
    "invalid_request": "invalid_request_error",
    "authentication": "invalid_request_error",
    "permission": "invalid_request_error",
    "not_found": "invalid_request_error",
    "timeout": "timeout",
    "rate_limit": "requests",
    "server": "server_error",
    "overloaded": "server_error",
}
_ERROR_CODES = {
    "authentication": "invalid_api_key",
    "not_found": "model_not_found",
    "rate_limit": "rate_limit_exceeded",
}


class OpenAIFrontend(Frontend):
    provider = "openai"

    def add_routes(self, app: web.Application) -> None:
        for prefix in ("/v1", ""):
            app.router.add_post(prefix + "/chat/completions", self.handle)
        app.router.add_get("/models", self.list_models)

    def authenticate(self, request: web.Request) -> None:
        if not self.server.require_auth:
            return
        key = bearer(request)
        if key is None:
            raise ApiError(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        if key not in self.keys():
            raise ApiError(
                401,
                f"Incorrect API key provided: {mask_key(key)}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )

    async def list_models(self, request: web.Request) -> web.Response:
        try:
            self.authenticate(request)
        except ApiError as error:
            return self.error_response(error)
        data = [
            {"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "sandbox"}
            for name in self.server.model_names("openai")
        ]
        return web.json_response({"object": "list", "data": data})

    def parse(
        self, request: web.Request, body: dict[str, Any], model: str
    ) -> tuple[Ask, dict[str, Any] | None]:
        if not model:
            raise ApiError(400, "you must provide a model parameter", param="model")
        if body.get("stream"):
            raise ApiError(
                400, "stream=true is not supported by the sandbox; send stream=false.", param="stream"
            )
        raw_messages = body.get("messages")
        if not isinstance(raw_messages, list) or not raw_messages:
            raise ApiError(400, "Invalid 'messages': expected a non-empty array.", param="messages")
        messages: list[dict[str, str]] = []
        for i, message in enumerate(raw_messages):
            if not isinstance(message, dict) or message.get("role") not in _ROLES:
                raise ApiError(
                    400,
                    f"Invalid value for 'messages[{i}].role': expected one of {', '.join(sorted(_ROLES))}.",
                    param=f"messages[{i}].role",
                )
            role = str(message["role"])
            content = message.get("content")
            if content is None and role != "assistant":
                raise ApiError(400, f"Missing required parameter: 'messages[{i}].content'.", param="messages")
            if role == "tool" and not message.get("tool_call_id"):
                raise ApiError(
                    400, f"Missing required parameter: 'messages[{i}].tool_call_id'.", param="messages"
                )
            text = message_text(content)
            if role == "assistant" and message.get("tool_calls"):
                text = (text + "\n" + json.dumps(message["tool_calls"])).strip()
            messages.append({"role": "system" if role == "developer" else role, "content": text})

        max_tokens = None
        for name in ("max_completion_tokens", "max_tokens"):
            if body.get(name) is not None:
                max_tokens = require_int(body[name], name)
        n = require_int(body["n"], "n", 1, 128) if body.get("n") is not None else 1
        optional_number(body, "temperature", 0, 2)
        optional_number(body, "top_p", 0, 1)

        output, constraint = self._output(body, messages)
        extra = json.dumps(output.schema) if output.schema is not None else ""
        if body.get("tools"):
            extra += json.dumps(body["tools"])
        ask = Ask("openai", model, messages, output, max_tokens=max_tokens, n=n, extra_prompt=extra)
        return ask, constraint

    def _output(
        self, body: dict[str, Any], messages: list[dict[str, str]]
    ) -> tuple[OutputSpec, dict[str, Any] | None]:
        constraint: dict[str, Any] = {}
        output = OutputSpec()
        fmt = body.get("response_format")
        if fmt is not None:
            constraint["response_format"] = fmt
            if not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema"):
                raise ApiError(
                    400,
                    "Invalid value for 'response_format.type': expected 'text', 'json_object' or "
                    "'json_schema'.",
                    param="response_format.type",
                )
            if fmt["type"] == "json_object":
                if not any("json" in m["content"].lower() for m in messages):
                    raise ApiError(
                        400,
                        "'messages' must contain the word 'json' in some form, to use 'response_format' of "
                        "type 'json_object'.",
                        param="messages",
                    )
                output = OutputSpec("json")
            elif fmt["type"] == "json_schema":
                output = self._json_schema(fmt.get("json_schema"))

        tools = body.get("tools")
        choice = body.get("tool_choice")
        if tools is not None:
            constraint["tools"] = tools
            if choice is not None:
                constraint["tool_choice"] = choice
            forced = self._forced_tool(tools, choice)
            if forced is not None:
                output = forced
        return output, constraint or None

    def _json_schema(self, spec: Any) -> OutputSpec:
        if not isinstance(spec, dict):
            raise ApiError(
                400, "Missing required parameter: 'response_format.json_schema'.", param="response_format"
            )
        name = spec.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ApiError(
                400,
                "Invalid 'response_format.json_schema.name': the name must match ^[a-zA-Z0-9_-]{1,64}$.",
                param="response_format.json_schema.name",
            )
        schema = spec.get("schema", {"type": "object"})
        try:
            check_schema(schema)
        except SchemaError as exc:
            raise ApiError(
                400, f"Invalid schema for response_format '{name}': {exc}", param="response_format"
            ) from None
        strict = spec.get("strict") is True
        if strict:
            problems = strict_schema_problems(schema)
            if problems:
                raise ApiError(
                    400,
                    f"Invalid schema for response_format '{name}': {problems[0]}",
                    param="response_format",
                    code="invalid_json_schema",
                )
        return OutputSpec("json", schema, name, strict)

    def _forced_tool(self, tools: Any, choice: Any) -> OutputSpec | None:
        if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
            raise ApiError(400, "Invalid 'tools': expected an array of tool objects.", param="tools")
        functions: dict[str, dict[str, Any]] = {}
        for i, tool in enumerate(tools):
            function = tool.get("function")
            if tool.get("type") != "function" or not isinstance(function, dict) or not function.get("name"):
                raise ApiError(400, f"Invalid 'tools[{i}]': expected a function with a name.", param="tools")
            functions[str(function["name"])] = function
        name: Any
        if choice == "required":
            name = next(iter(functions))
        elif isinstance(choice, dict):
            chosen = choice.get("function")
            name = chosen.get("name") if isinstance(chosen, dict) else None
            if name not in functions:
                raise ApiError(
                    400, "Invalid 'tool_choice': the function is not among 'tools'.", param="tool_choice"
                )
        else:
            return None
        function = functions[str(name)]
        schema = function.get("parameters") or {"type": "object", "properties": {}}
        return OutputSpec("tool", schema, str(name), function.get("strict") is True)

    def render(self, ask: Ask, reply: Reply) -> dict[str, Any]:
        finish = {"stop": "stop", "length": "length", "tool": "tool_calls"}[reply.finish]
        choices = []
        for index in range(ask.n):
            message: dict[str, Any] = {
                "role": "assistant",
                "content": reply.text,
                "refusal": None,
                "annotations": [],
            }
            if reply.tool_input is not None:
                message["tool_calls"] = [
                    {
                        "id": new_id("call_"),
                        "type": "function",
                        "function": {"name": reply.tool_name, "arguments": json.dumps(reply.tool_input)},
                    }
                ]
            choices.append({"index": index, "message": message, "logprobs": None, "finish_reason": finish})
        completion = reply.completion_tokens * ask.n
        return {
            "id": new_id("chatcmpl-", 28),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": ask.model,
            "choices": choices,
            "usage": {
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": completion,
                "total_tokens": reply.prompt_tokens + completion,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": "fp_sandbox",
        }

    def error_body(self, error: ApiError) -> dict[str, Any]:
        return {
            "error": {
                "message": error.message,
                "type": _ERROR_TYPES[error.kind],
                "param": error.param,
                "code": error.code or _ERROR_CODES.get(error.kind),
            }
        }

    def response_headers(self) -> dict[str, str]:
        return {"x-request-id": new_id("req_", 32), "openai-processing-ms": "1"}
