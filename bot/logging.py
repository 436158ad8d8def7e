"""structlog setup: JSON in production, readable in development; secrets are scrubbed from every line."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_SECRET_KEYS = re.compile(r"(token|secret|password|passphrase|api_?key|master_?key|authorization)", re.I)
# Telegram bot tokens (123456:ABC...) and anything that looks like a bearer/API secret in free text.
_BOT_TOKEN = re.compile(r"\b\d{5,}:[A-Za-z0-9_-]{20,}\b")
_BOT_URL = re.compile(r"/bot\d{5,}:[A-Za-z0-9_-]+")
_KNOWN: set[str] = set()


def register_secret(value: str | None) -> None:
    """Scrub this exact value wherever it would be logged (bot tokens, keys)."""
    if value and len(value) >= 8:
        _KNOWN.add(value)


def redact_text(text: str) -> str:
    for secret in _KNOWN:
        if secret in text:
            text = text.replace(secret, "***")
    text = _BOT_URL.sub("/bot***", text)
    return _BOT_TOKEN.sub("***", text)


def _redact(value: Any, key: str = "") -> Any:
    if key and _SECRET_KEYS.search(key) and value not in (None, "", False):
        return "***"
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    return value


def redact_processor(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    for key in list(event_dict):
        event_dict[key] = _redact(event_dict[key], key if key != "event" else "")
    return event_dict


def setup_logging(level: str = "INFO", fmt: str = "auto") -> None:
    json_output = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_processor,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiohttp.access", "aiogram.event", "sqlalchemy.engine", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
