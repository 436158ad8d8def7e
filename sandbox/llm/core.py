"""Provider-neutral shapes: what a request asks for (:class:`Ask`), what the server answers (:class:`Reply`),
the errors it can give (:class:`ApiError`) and the request log (:class:`RequestRecord`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

PROVIDERS = ("openai", "anthropic", "gemini")
OutputKind = Literal["text", "json", "tool"]
Finish = Literal["stop", "length", "tool"]
ErrorKind = Literal[
    "invalid_request",
    "authentication",
    "permission",
    "not_found",
    "timeout",
    "rate_limit",
    "server",
    "overloaded",
]

_KIND_BY_STATUS: dict[int, ErrorKind] = {
    400: "invalid_request",
    401: "authentication",
    403: "permission",
    404: "not_found",
    408: "timeout",
    413: "invalid_request",
    422: "invalid_request",
    429: "rate_limit",
    503: "overloaded",
    529: "overloaded",
}


def kind_for_status(status: int) -> ErrorKind:
    return _KIND_BY_STATUS.get(status, "server" if status >= 500 else "invalid_request")


class ApiError(Exception):
    """An error answer; each provider renders it in its own body shape."""

    def __init__(
        self,
        status: int,
        message: str,
        kind: ErrorKind | None = None,
        *,
        code: str | None = None,
        param: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind: ErrorKind = kind or kind_for_status(status)
        self.code = code
        self.param = param
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        value = self.retry_after
        return {"Retry-After": str(int(value)) if float(value).is_integer() else f"{value:g}"}


@dataclass
class OutputSpec:
    """The kind of answer asked for: free ``text``, ``json`` (with a ``schema`` when one was given) or a
    forced ``tool`` call named ``name`` whose arguments follow ``schema``."""

    kind: OutputKind = "text"
    schema: dict[str, Any] | None = None
    name: str | None = None
    strict: bool = False


@dataclass
class Ask:
    provider: str
    model: str
    messages: list[dict[str, str]]
    output: OutputSpec
    max_tokens: int | None = None
    n: int = 1
    extra_prompt: str = ""

    @property
    def user_text(self) -> str:
        return "\n".join(m["content"] for m in self.messages if m["role"] == "user")

    @property
    def prompt_texts(self) -> list[str]:
        return [m["content"] for m in self.messages]


@dataclass
class Reply:
    text: str | None = None
    tool_input: dict[str, Any] | None = None
    tool_name: str | None = None
    finish: Finish = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def content(self) -> str:
        """What the model said: the text, or the tool arguments as JSON."""
        if self.tool_input is not None:
            return json.dumps(self.tool_input)
        return self.text or ""


@dataclass
class RequestRecord:
    """One request to a provider endpoint. ``response_format`` holds what the client sent to constrain the
    output, in the provider's own words: OpenAI's ``response_format`` (and ``tools``/``tool_choice``),
    Anthropic's ``output_format``/``output_config`` or ``tools``/``tool_choice``, Gemini's
    ``generationConfig`` response fields (and ``tools``/``toolConfig``)."""

    id: int
    time: float
    provider: str
    model: str
    path: str
    messages: list[dict[str, str]] = field(default_factory=list)
    response_format: dict[str, Any] | None = None
    output_kind: str = "text"
    schema: dict[str, Any] | None = None
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    status: int | None = None
    error: str | None = None
    reply: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.time,
            "provider": self.provider,
            "model": self.model,
            "path": self.path,
            "messages": self.messages,
            "response_format": self.response_format,
            "output_kind": self.output_kind,
            "schema": self.schema,
            "body": self.body,
            "headers": self.headers,
            "status": self.status,
            "error": self.error,
            "reply": self.reply,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "latency": self.latency,
        }


def message_text(content: Any) -> str:
    """The text of a message's ``content``: a string, or the ``text`` of its text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict):
                if isinstance(part.get("text"), str):
                    parts.append(part["text"])
                elif "input" in part:
                    parts.append(json.dumps(part["input"]))
                elif isinstance(part.get("content"), str | list):
                    parts.append(message_text(part["content"]))
        return "\n".join(parts)
    if isinstance(content, dict) and isinstance(content.get("text"), str):
        return str(content["text"])
    return json.dumps(content)
