"""Per-model scripted behaviour: what a model answers, how slowly, and when it fails."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sandbox.llm.core import ApiError

Mode = Literal["brain", "answer", "invalid_json", "schema_violation"]
MODES: tuple[Mode, ...] = ("brain", "answer", "invalid_json", "schema_violation")
WILDCARD = "*"
_DEFAULT_MESSAGES: dict[str, dict[int, str]] = {
    "openai": {
        401: "Incorrect API key provided: sk-****. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        429: "Rate limit reached for {model} in organization org-sandbox on requests per min (RPM): "
        "Limit 3, Used 3, Requested 1. Please try again in 20s.",
        500: "The server had an error while processing your request. Sorry about that!",
        503: "The engine is currently overloaded, please try again later.",
    },
    "anthropic": {
        401: "invalid x-api-key",
        429: "Number of request tokens has exceeded your per-minute rate limit.",
        500: "Internal server error",
        529: "Overloaded",
    },
    "gemini": {
        400: "API key not valid. Please pass a valid API key.",
        401: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
        "other valid authentication credential.",
        429: "Resource has been exhausted (e.g. check quota).",
        500: "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
        503: "The model is overloaded. Please try again later.",
    },
}
_PREFIXES = ("openai/", "anthropic/", "gemini/", "models/")


def model_key(model: str) -> str:
    """A model name without litellm's provider prefix or Gemini's ``models/``: ``gemini/gemini-2.5-flash``
    and ``models/gemini-2.5-flash`` both become ``gemini-2.5-flash``."""
    name = model.strip()
    changed = True
    while changed:
        changed = False
        for prefix in _PREFIXES:
            if name.startswith(prefix):
                name, changed = name[len(prefix) :], True
    return name


@dataclass
class ErrorScript:
    """Answer with HTTP ``status`` (``retry_after`` seconds in ``Retry-After``) for the next ``times``
    requests, or for every request while ``times`` is None."""

    status: int
    retry_after: float | None = None
    times: int | None = None
    message: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "retry_after": self.retry_after,
            "times": self.times,
            "message": self.message,
        }

    def to_error(self, provider: str, model: str) -> ApiError:
        """The error as ``provider`` words it (its usual message for the status unless ``message``)."""
        text = self.message or _DEFAULT_MESSAGES.get(provider, {}).get(self.status)
        if text is None:
            text = f"The sandbox was scripted to answer HTTP {self.status}."
        code = "API_KEY_INVALID" if provider == "gemini" and self.status == 400 else None
        return ApiError(self.status, text.format(model=model), code=code, retry_after=self.retry_after)


@dataclass
class Script:
    """How one model behaves. ``mode`` picks the answer: ``brain`` (the derived vote), ``answer`` (the fixed
    ``answer``: a string is sent verbatim, anything else as JSON), ``invalid_json`` (text that breaks off
    mid-JSON) or ``schema_violation`` (JSON that breaks the requested schema). ``mode_times`` limits a
    non-brain mode to that many requests (then back to ``brain``); ``delay`` seconds pass before every answer;
    ``error`` fails requests before any answer is made."""

    model: str
    mode: Mode = "brain"
    answer: Any = None
    mode_times: int | None = None
    delay: float = 0.0
    error: ErrorScript | None = None
    served: int = field(default=0)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "mode": self.mode,
            "answer": self.answer,
            "mode_times": self.mode_times,
            "delay": self.delay,
            "error": self.error.to_json() if self.error else None,
            "served": self.served,
        }

    def take_error(self, provider: str, model: str) -> ApiError | None:
        """The error for this request, if one is due (counting down ``times``)."""
        error = self.error
        if error is None:
            return None
        if error.times is not None:
            if error.times <= 0:
                self.error = None
                return None
            error.times -= 1
        return error.to_error(provider, model)

    def take_mode(self) -> tuple[Mode, Any]:
        """The answer mode for this request (counting down ``mode_times``)."""
        mode, answer = self.mode, self.answer
        if mode != "brain" and self.mode_times is not None:
            self.mode_times -= 1
            if self.mode_times <= 0:
                self.mode, self.answer, self.mode_times = "brain", None, None
        self.served += 1
        return mode, answer


class ScriptBook:
    """Scripts by model name; ``*`` applies to every model without a script of its own."""

    def __init__(self) -> None:
        self._scripts: dict[str, Script] = {}

    def get(self, model: str) -> Script | None:
        return self._scripts.get(model_key(model)) or self._scripts.get(WILDCARD)

    def edit(self, model: str) -> Script:
        key = model_key(model)
        script = self._scripts.get(key)
        if script is None:
            script = self._scripts[key] = Script(model=key)
        return script

    def reset(self, model: str | None = None) -> None:
        if model is None:
            self._scripts.clear()
        else:
            self._scripts.pop(model_key(model), None)

    def all(self) -> list[Script]:
        return list(self._scripts.values())
