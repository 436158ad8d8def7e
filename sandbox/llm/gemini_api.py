"""Google Gemini (Generative Language API): ``POST /v1beta/models/{model}:generateContent`` and
``:countTokens`` (also under ``/v1/`` and without a version prefix, which is what litellm requests when its
``api_base`` has no version), ``GET /v1beta/models``. The key comes in the ``key`` query parameter or the
``x-goog-api-key`` header.

Structured output: ``generationConfig.responseMimeType: application/json`` with ``responseJsonSchema`` or
``responseSchema`` (camelCase or snake_case; OpenAPI-style upper-case types and ``nullable`` understood).
For models without schema support litellm writes the schema into the prompt ("Use this JSON schema: ...");
that schema is read back from the prompt and honoured as well. A forced function call
(``toolConfig.functionCallingConfig.mode: ANY``) gets a ``functionCall`` part."""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from aiohttp import web

from sandbox.llm.core import ApiError, Ask, OutputSpec, Reply, message_text
from sandbox.llm.frontend import Frontend, new_id, optional_number, require_int
from sandbox.llm.schema import SchemaError, check_schema, normalize

_STATUS = {
    "invalid_request": "INVALID_ARGUMENT",
    "authentication": "UNAUTHENTICATED",
    "permission": "PERMISSION_DENIED",
    "not_found": "NOT_FOUND",
    "timeout": "DEADLINE_EXCEEDED",
    "rate_limit": "RESOURCE_EXHAUSTED",
    "server": "INTERNAL",
    "overloaded": "UNAVAILABLE",
}
_PROMPT_SCHEMA = re.compile(r"Use this JSON schema:\s*```(?:json)?\s*(.+?)\s*```", re.S)


def _pick(mapping: dict[str, Any], camel: str) -> Any:
    """``mapping[camel]`` or its snake_case spelling."""
    if camel in mapping:
        return mapping[camel]
    return mapping.get(re.sub(r"(?<!^)([A-Z])", r"_\1", camel).lower())


def schema_from_prompt(text: str) -> dict[str, Any] | None:
    """The schema litellm embeds in the prompt for Gemini models it believes lack schema support."""
    match = _PROMPT_SCHEMA.search(text)
    if match is None:
        return None
    source = match.group(1)
    for loader in (json.loads, ast.literal_eval):
        try:
            value = loader(source)
        except (ValueError, SyntaxError):
            continue
        if isinstance(value, dict):
            return value
    return None


class GeminiFrontend(Frontend):
    provider = "gemini"

    def add_routes(self, app: web.Application) -> None:
        for prefix in ("/v1beta", "/v1", ""):
            app.router.add_post(prefix + "/models/{target}", self.dispatch)
        for prefix in ("/v1beta", ""):
            app.router.add_get(prefix + "/models", self.list_models)
        app.router.add_get("/v1beta/models/{model}", self.get_model)

    def model_of(self, request: web.Request, body: dict[str, Any]) -> str:
        return request.match_info.get("target", "").partition(":")[0]

    def authenticate(self, request: web.Request) -> None:
        if not self.server.require_auth:
            return
        key = request.query.get("key") or request.headers.get("x-goog-api-key")
        if not key:
            raise ApiError(
                403,
                "Method doesn't allow unregistered callers (callers without established identity). "
                "Please use API Key or other form of API consumer identity to call this API.",
            )
        if key not in self.keys():
            raise ApiError(400, "API key not valid. Please pass a valid API key.", code="API_KEY_INVALID")

    async def dispatch(self, request: web.Request) -> web.Response:
        model, _, method = request.match_info["target"].partition(":")
        if method == "generateContent":
            return await self.handle(request)
        if method == "countTokens":
            return await self.count_tokens(request)
        error = ApiError(
            404 if method != "streamGenerateContent" else 400,
            f"models/{model}:{method} is not served by the sandbox (generateContent and countTokens are).",
        )
        return self.error_response(error)

    async def count_tokens(self, request: web.Request) -> web.Response:
        try:
            body = await self.read_body(request)
            self.authenticate(request)
            request_body = body.get("generateContentRequest", body)
            ask, _ = self.parse(request, request_body, self.model_of(request, body))
        except ApiError as error:
            return self.error_response(error)
        return web.json_response({"totalTokens": self.answer(ask, None).prompt_tokens})

    def _model_info(self, name: str) -> dict[str, Any]:
        return {
            "name": f"models/{name}",
            "version": "001",
            "displayName": name,
            "inputTokenLimit": 1_048_576,
            "outputTokenLimit": 65_536,
            "supportedGenerationMethods": ["generateContent", "countTokens"],
        }

    async def list_models(self, request: web.Request) -> web.Response:
        try:
            self.authenticate(request)
        except ApiError as error:
            return self.error_response(error)
        return web.json_response({"models": [self._model_info(n) for n in self.server.model_names("gemini")]})

    async def get_model(self, request: web.Request) -> web.Response:
        try:
            self.authenticate(request)
        except ApiError as error:
            return self.error_response(error)
        return web.json_response(self._model_info(request.match_info["model"]))

    def parse(
        self, request: web.Request, body: dict[str, Any], model: str
    ) -> tuple[Ask, dict[str, Any] | None]:
        if not model:
            raise ApiError(404, "models/ is not found for API version v1beta.")
        messages: list[dict[str, str]] = []
        system = _pick(body, "systemInstruction")
        if system is not None:
            if not isinstance(system, dict) or not isinstance(system.get("parts"), list):
                raise ApiError(
                    400, "Invalid JSON payload received. Unknown name \"parts\" at 'system_instruction'."
                )
            messages.append(
                {"role": "system", "content": self._parts_text(system["parts"], "system_instruction")}
            )
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            raise ApiError(400, "* GenerateContentRequest.contents: contents is not specified\n")
        for i, content in enumerate(contents):
            if (
                not isinstance(content, dict)
                or not isinstance(content.get("parts"), list)
                or not content["parts"]
            ):
                raise ApiError(
                    400, f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.\n"
                )
            role = content.get("role", "user")
            if role not in ("user", "model", "function", "tool"):
                raise ApiError(400, f"Please use a valid role: user, model. (contents[{i}].role = {role!r})")
            messages.append(
                {
                    "role": "assistant" if role == "model" else "user",
                    "content": self._parts_text(content["parts"], f"contents[{i}]"),
                }
            )

        config = _pick(body, "generationConfig") or {}
        if not isinstance(config, dict):
            raise ApiError(400, "Invalid JSON payload received. 'generation_config' must be an object.")
        max_tokens = None
        if _pick(config, "maxOutputTokens") is not None:
            max_tokens = require_int(_pick(config, "maxOutputTokens"), "generation_config.max_output_tokens")
        candidates = 1
        if _pick(config, "candidateCount") is not None:
            candidates = require_int(
                _pick(config, "candidateCount"), "generation_config.candidate_count", 1, 8
            )
        optional_number(config, "temperature", 0, 2)

        output, constraint = self._output(body, config, messages)
        extra = json.dumps(output.schema) if output.schema is not None else ""
        ask = Ask("gemini", model, messages, output, max_tokens=max_tokens, n=candidates, extra_prompt=extra)
        return ask, constraint

    @staticmethod
    def _parts_text(parts: list[Any], where: str) -> str:
        texts: list[str] = []
        for j, part in enumerate(parts):
            if not isinstance(part, dict):
                raise ApiError(400, f"Invalid JSON payload received. {where}.parts[{j}] must be an object.")
            if isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif "functionCall" in part or "function_call" in part:
                texts.append(json.dumps(_pick(part, "functionCall")))
            elif "functionResponse" in part or "function_response" in part:
                texts.append(json.dumps(_pick(part, "functionResponse")))
            else:
                texts.append(message_text(part))
        return "\n".join(texts)

    def _output(
        self, body: dict[str, Any], config: dict[str, Any], messages: list[dict[str, str]]
    ) -> tuple[OutputSpec, dict[str, Any] | None]:
        constraint = {
            key: value
            for key, value in config.items()
            if key.replace("_", "").lower() in ("responsemimetype", "responseschema", "responsejsonschema")
        }
        mime = _pick(config, "responseMimeType")
        schema = _pick(config, "responseJsonSchema")
        if schema is None:
            schema = _pick(config, "responseSchema")
        output = OutputSpec()
        if schema is not None:
            if mime != "application/json":
                raise ApiError(
                    400,
                    "* GenerateContentRequest.generation_config.response_mime_type: only application/json is "
                    "supported with response_schema.\n",
                )
            try:
                check_schema(schema)
            except SchemaError as exc:
                raise ApiError(
                    400, f"* GenerateContentRequest.generation_config.response_schema: {exc}\n"
                ) from None
            output = OutputSpec("json", normalize(schema))
        elif mime == "application/json":
            prompt_schema = schema_from_prompt("\n".join(m["content"] for m in messages))
            output = OutputSpec("json", normalize(prompt_schema) if prompt_schema else None)
        elif mime not in (None, "text/plain"):
            raise ApiError(
                400,
                f"* GenerateContentRequest.generation_config.response_mime_type: {mime!r} is not "
                "supported.\n",
            )

        tools = body.get("tools")
        tool_config = _pick(body, "toolConfig")
        if tools is not None:
            constraint["tools"] = tools
            if tool_config is not None:
                constraint["toolConfig"] = tool_config
            forced = self._forced_function(tools, tool_config)
            if forced is not None:
                output = forced
        return output, constraint or None

    def _forced_function(self, tools: Any, tool_config: Any) -> OutputSpec | None:
        if not isinstance(tools, list):
            raise ApiError(400, "Invalid JSON payload received. 'tools' must be a list.")
        functions: dict[str, dict[str, Any]] = {}
        for tool in tools:
            declarations = _pick(tool, "functionDeclarations") if isinstance(tool, dict) else None
            for declaration in declarations or []:
                if isinstance(declaration, dict) and isinstance(declaration.get("name"), str):
                    functions[declaration["name"]] = declaration
        calling = _pick(tool_config, "functionCallingConfig") if isinstance(tool_config, dict) else None
        if not isinstance(calling, dict) or str(calling.get("mode", "")).upper() != "ANY" or not functions:
            return None
        allowed = _pick(calling, "allowedFunctionNames") or list(functions)
        name = next((n for n in allowed if n in functions), None)
        if name is None:
            raise ApiError(
                400, "* tool_config.function_calling_config.allowed_function_names: unknown function.\n"
            )
        declaration = functions[name]
        schema = _pick(declaration, "parametersJsonSchema") or declaration.get("parameters")
        return OutputSpec("tool", normalize(schema) if schema else {"type": "object", "properties": {}}, name)

    def render(self, ask: Ask, reply: Reply) -> dict[str, Any]:
        if reply.tool_input is not None:
            part: dict[str, Any] = {"functionCall": {"name": reply.tool_name, "args": reply.tool_input}}
        else:
            part = {"text": reply.text or ""}
        finish = "MAX_TOKENS" if reply.finish == "length" else "STOP"
        candidates = [
            {"content": {"parts": [part], "role": "model"}, "finishReason": finish, "index": i}
            for i in range(ask.n)
        ]
        completion = reply.completion_tokens * ask.n
        return {
            "candidates": candidates,
            "usageMetadata": {
                "promptTokenCount": reply.prompt_tokens,
                "candidatesTokenCount": completion,
                "totalTokenCount": reply.prompt_tokens + completion,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": reply.prompt_tokens}],
            },
            "modelVersion": ask.model,
            "responseId": new_id("", 22),
        }

    def error_body(self, error: ApiError) -> dict[str, Any]:
        body: dict[str, Any] = {"code": error.status, "message": error.message, "status": _STATUS[error.kind]}
        if error.code:
            body["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": error.code,
                    "domain": "googleapis.com",
                }
            ]
        return {"error": body}
