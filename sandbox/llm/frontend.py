"""What every provider endpoint shares: reading the body, authenticating, logging, delays and scripted
errors, and turning the brain's answer into a :class:`~sandbox.llm.core.Reply`. A provider subclass parses
its wire format into an :class:`~sandbox.llm.core.Ask` and renders replies and errors in its own shapes."""

from __future__ import annotations

import json
import secrets
import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from aiohttp import web

from sandbox.llm import brain
from sandbox.llm.core import ApiError, Ask, Reply
from sandbox.llm.script import Script, model_key
from sandbox.llm.tokens import count_prompt_tokens, count_tokens, truncate_to_tokens

if TYPE_CHECKING:
    from sandbox.llm.server import LLMServer

_SECRET_HEADERS = {"authorization", "x-api-key", "x-goog-api-key"}


def mask_key(key: str) -> str:
    return key[:3] + "*" * 4 + key[-4:] if len(key) > 8 else "*" * len(key)


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + secrets.token_hex(length // 2)


class Frontend(ABC):
    provider = ""

    def __init__(self, server: LLMServer) -> None:
        self.server = server

    # -- provider specifics --------------------------------------------------------------------------------
    def model_of(self, request: web.Request, body: dict[str, Any]) -> str:
        model = body.get("model")
        return model if isinstance(model, str) else ""

    @abstractmethod
    def authenticate(self, request: web.Request) -> None:
        """Refuse (raise the provider's auth error) a request without a valid key."""

    @abstractmethod
    def parse(
        self, request: web.Request, body: dict[str, Any], model: str
    ) -> tuple[Ask, dict[str, Any] | None]:
        """The neutral ask and what the client sent to constrain the output (for the request log)."""

    @abstractmethod
    def render(self, ask: Ask, reply: Reply) -> dict[str, Any]:
        """The reply in the provider's response shape."""

    @abstractmethod
    def error_body(self, error: ApiError) -> dict[str, Any]:
        """An error in the provider's error shape."""

    def response_headers(self) -> dict[str, str]:
        return {}

    # -- shared flow ---------------------------------------------------------------------------------------
    def error_response(self, error: ApiError) -> web.Response:
        return web.json_response(
            self.error_body(error),
            status=error.status,
            headers={**self.response_headers(), **error.headers()},
        )

    def keys(self) -> set[str]:
        return self.server.api_keys.setdefault(self.provider, set())

    async def read_body(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            raise ApiError(400, "We could not parse the JSON body of your request.") from None
        if not isinstance(body, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        return body

    async def handle(self, request: web.Request, body: dict[str, Any] | None = None) -> web.Response:
        started = time.monotonic()
        record = self.server.new_record(self.provider, request)
        try:
            if body is None:
                body = await self.read_body(request)
            record.body = body
            model = self.model_of(request, body)
            record.model = model_key(model)
            self.authenticate(request)
            ask, constraint = self.parse(request, body, model)
            record.messages = ask.messages
            record.response_format = constraint
            record.output_kind = ask.output.kind
            record.schema = ask.output.schema
            script = self.server.scripts.get(model)
            if script is not None and script.delay > 0:
                await self.server.sleep(script.delay)
            if script is not None:
                scripted = script.take_error(self.provider, model_key(model))
                if scripted is not None:
                    raise scripted
            reply = self.answer(ask, script)
            payload = self.render(ask, reply)
            record.reply = reply.content
            record.prompt_tokens, record.completion_tokens = reply.prompt_tokens, reply.completion_tokens
            record.status = 200
            return web.json_response(payload, headers=self.response_headers())
        except ApiError as error:
            record.status, record.error = error.status, error.message
            return self.error_response(error)
        finally:
            record.latency = round(time.monotonic() - started, 6)

    def answer(self, ask: Ask, script: Script | None) -> Reply:
        vote = brain.derive_vote(ask.user_text, model_key(ask.model), self.server.seed)
        mode, fixed = script.take_mode() if script is not None else ("brain", None)
        schema = ask.output.schema
        value: Any
        if mode == "answer":
            value = fixed
        elif mode == "invalid_json":
            value = brain.invalid_json(vote, schema)
        elif mode == "schema_violation":
            value = brain.broken_for_schema(vote, schema)
        elif ask.output.kind == "text":
            wants_json = any("json" in text.lower() for text in ask.prompt_texts)
            value = json.dumps(vote.to_json()) if wants_json else brain.prose(vote)
        else:
            value = brain.vote_for_schema(vote, schema)

        reply = Reply(prompt_tokens=count_prompt_tokens(ask.prompt_texts, ask.extra_prompt))
        if ask.output.kind == "tool" and isinstance(value, dict) and mode != "invalid_json":
            reply.tool_input, reply.tool_name, reply.finish = value, ask.output.name, "tool"
        else:
            reply.text = value if isinstance(value, str) else json.dumps(value)
        reply.completion_tokens = count_tokens(reply.content)
        if ask.max_tokens is not None and reply.completion_tokens > ask.max_tokens:
            reply.text = truncate_to_tokens(reply.content, ask.max_tokens)
            reply.tool_input = reply.tool_name = None
            reply.finish = "length"
            reply.completion_tokens = count_tokens(reply.text)
        reply.completion_tokens = max(reply.completion_tokens, 1)
        return reply


def require_int(value: Any, name: str, minimum: int = 1, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"Invalid type for '{name}': expected an integer.", param=name)
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise ApiError(400, f"Invalid '{name}': {value}; it must be {bound}.", param=name)
    return value


def optional_number(body: dict[str, Any], name: str, low: float, high: float) -> None:
    if name not in body or body[name] is None:
        return
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApiError(400, f"Invalid type for '{name}': expected a number.", param=name)
    if not low <= value <= high:
        raise ApiError(
            400, f"Invalid '{name}': {value}; it must be between {low:g} and {high:g}.", param=name
        )


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return None


def safe_headers(request: web.Request) -> dict[str, str]:
    return {k: ("<redacted>" if k.lower() in _SECRET_HEADERS else v) for k, v in request.headers.items()}
