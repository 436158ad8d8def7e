"""``LLMServer``: OpenAI, Anthropic and Gemini endpoints with scripted behaviour on one local port."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import web

from sandbox.llm.anthropic_api import AnthropicFrontend
from sandbox.llm.brain import Vote, derive_vote
from sandbox.llm.control import setup_control_routes
from sandbox.llm.core import PROVIDERS, RequestRecord
from sandbox.llm.frontend import safe_headers
from sandbox.llm.gemini_api import GeminiFrontend
from sandbox.llm.openai_api import OpenAIFrontend
from sandbox.llm.script import MODES, ErrorScript, Mode, Script, ScriptBook, model_key

DEFAULT_API_KEYS: dict[str, str] = {
    "openai": "sk-sandbox-openai",
    "anthropic": "sk-ant-sandbox",
    "gemini": "sandbox-gemini-key",
}
DEFAULT_MODELS: dict[str, tuple[str, ...]] = {
    "openai": ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini"),
    "anthropic": ("claude-haiku-4-5", "claude-sonnet-4-5"),
    "gemini": ("gemini-2.5-flash", "gemini-2.5-pro"),
}
_UNSET: Any = object()


class LLMServer:
    """A local LLM API. Point litellm at :attr:`openai_base` (``/v1``), :attr:`anthropic_base` (the origin)
    or :attr:`gemini_base` (``/v1beta``) with a key from :attr:`api_keys`."""

    def __init__(
        self,
        api_keys: Mapping[str, str | Iterable[str]] | None = None,
        *,
        seed: int = 0,
        require_auth: bool = True,
        max_log: int = 10_000,
    ) -> None:
        self.api_keys: dict[str, set[str]] = {p: {k} for p, k in DEFAULT_API_KEYS.items()}
        for provider, keys in (api_keys or {}).items():
            if provider not in PROVIDERS:
                raise ValueError(f"unknown provider {provider!r}; expected one of {PROVIDERS}")
            self.api_keys[provider] = {keys} if isinstance(keys, str) else set(keys)
        self.seed = seed
        self.require_auth = require_auth
        self.scripts = ScriptBook()
        self.max_log = max_log
        self._log: list[RequestRecord] = []
        self._next_id = 1
        self._closing = asyncio.Event()
        self.openai = OpenAIFrontend(self)
        self.anthropic = AnthropicFrontend(self)
        self.gemini = GeminiFrontend(self)
        self.host = "127.0.0.1"
        self.port = 0
        self._runner: web.AppRunner | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------
    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        self.openai.add_routes(app)
        self.anthropic.add_routes(app)
        self.gemini.add_routes(app)
        app.router.add_get("/v1/models", self._list_models)
        setup_control_routes(app, self)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._closing = asyncio.Event()
        self._runner = web.AppRunner(self.build_app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        address = self._runner.addresses[-1]
        self.host, self.port = host, int(address[1])
        return self.base_url

    async def stop(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> LLMServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less when the server stops meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), timeout=seconds)

    # -- addresses -------------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base(self) -> str:
        return self.base_url + "/v1"

    @property
    def anthropic_base(self) -> str:
        return self.base_url

    @property
    def gemini_base(self) -> str:
        return self.base_url + "/v1beta"

    def api_key(self, provider: str) -> str:
        """A key the server accepts for ``provider`` (the default one when it is still configured)."""
        keys = self.api_keys.get(provider) or set()
        default = DEFAULT_API_KEYS[provider]
        return default if default in keys else sorted(keys)[0]

    def client_kwargs(self, provider: str) -> dict[str, str]:
        """``api_base`` and ``api_key`` for ``litellm.acompletion`` with a model of ``provider``."""
        bases = {"openai": self.openai_base, "anthropic": self.anthropic_base, "gemini": self.gemini_base}
        return {"api_base": bases[provider], "api_key": self.api_key(provider)}

    def add_api_key(self, provider: str, key: str) -> None:
        if provider not in PROVIDERS:
            raise ValueError(f"unknown provider {provider!r}; expected one of {PROVIDERS}")
        self.api_keys.setdefault(provider, set()).add(key)

    # -- scripting -------------------------------------------------------------------------------------------
    def script(
        self,
        model: str,
        *,
        mode: Mode | None = None,
        answer: Any = _UNSET,
        times: int | None = _UNSET,
        delay: float | None = None,
        error: ErrorScript | None = _UNSET,
    ) -> Script:
        """Change how ``model`` (``*``: every model without its own script) behaves; unnamed fields keep
        their value. Giving ``answer`` implies ``mode="answer"``; ``times`` limits the mode to that many
        requests. Returns the script."""
        script = self.scripts.edit(model)
        if answer is not _UNSET:
            script.answer = answer
            script.mode = "answer"
        if mode is not None:
            if mode not in MODES:
                raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
            script.mode = mode
            if mode == "brain":
                script.answer = None
        if times is not _UNSET:
            if times is not None and times < 1:
                raise ValueError("times must be at least 1")
            script.mode_times = times
        if delay is not None:
            if delay < 0:
                raise ValueError("delay must not be negative")
            script.delay = float(delay)
        if error is not _UNSET:
            script.error = error
        return script

    def set_answer(self, model: str, answer: Any, times: int | None = None) -> Script:
        """Answer ``answer``: a string verbatim, anything else as JSON (a dict becomes Anthropic's tool
        input or an OpenAI tool call's arguments when the client forced a tool)."""
        return self.script(model, answer=answer, times=times)

    def set_invalid_json(self, model: str, times: int | None = None) -> Script:
        return self.script(model, mode="invalid_json", times=times)

    def set_schema_violation(self, model: str, times: int | None = None) -> Script:
        return self.script(model, mode="schema_violation", times=times)

    def set_delay(self, model: str, seconds: float) -> Script:
        return self.script(model, delay=seconds)

    def set_error(
        self,
        model: str,
        status: int = 500,
        *,
        times: int | None = None,
        retry_after: float | None = None,
        message: str | None = None,
    ) -> Script:
        """Fail the next ``times`` requests (every request while None) with HTTP ``status`` in the
        provider's error shape; ``retry_after`` adds a ``Retry-After`` header."""
        if not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error status (400-599)")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1")
        return self.script(model, error=ErrorScript(status, retry_after, times, message))

    def reset(self, model: str | None = None) -> None:
        """Forget the script of ``model``, or every script."""
        self.scripts.reset(model)

    def preview_vote(self, prompt: str, model: str = "") -> Vote:
        """The vote the brain derives from ``prompt`` (the user text) for ``model``."""
        return derive_vote(prompt, model_key(model), self.seed)

    # -- request log -----------------------------------------------------------------------------------------
    def new_record(self, provider: str, request: web.Request) -> RequestRecord:
        record = RequestRecord(
            id=self._next_id,
            time=time.time(),
            provider=provider,
            model="",
            path=request.path,
            headers=safe_headers(request),
        )
        self._next_id += 1
        self._log.append(record)
        if len(self._log) > self.max_log:
            del self._log[: len(self._log) - self.max_log]
        return record

    @property
    def requests(self) -> list[RequestRecord]:
        """Requests to the provider endpoints, oldest first."""
        return list(self._log)

    def requests_for(self, model: str | None = None, provider: str | None = None) -> list[RequestRecord]:
        key = model_key(model) if model is not None else None
        return [
            r
            for r in self._log
            if (key is None or r.model == key) and (provider is None or r.provider == provider)
        ]

    def clear_requests(self) -> None:
        self._log.clear()

    # -- models and info -------------------------------------------------------------------------------------
    def model_names(self, provider: str) -> list[str]:
        names = list(DEFAULT_MODELS.get(provider, ()))
        for record in self._log:
            if record.provider == provider and record.model and record.model not in names:
                names.append(record.model)
        return names

    async def _list_models(self, request: web.Request) -> web.Response:
        if "anthropic-version" in request.headers or "x-api-key" in request.headers:
            return await self.anthropic.list_models(request)
        return await self.openai.list_models(request)

    def info(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "openai": {**self.client_kwargs("openai"), "model_prefix": "openai/"},
            "anthropic": {**self.client_kwargs("anthropic"), "model_prefix": "anthropic/"},
            "gemini": {**self.client_kwargs("gemini"), "model_prefix": "gemini/"},
            "api_keys": {p: sorted(k) for p, k in self.api_keys.items()},
            "control_api": self.base_url + "/sandbox/api",
            "seed": self.seed,
            "require_auth": self.require_auth,
            "scripts": [s.to_json() for s in self.scripts.all()],
        }
