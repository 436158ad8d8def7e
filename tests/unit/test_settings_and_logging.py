from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest

from bot.logging import redact_processor, redact_text, register_secret
from bot.settings import Settings


def test_defaults_are_the_embedded_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("BOT_TOKEN", "DATABASE_URL", "REDIS_URL", "WEBHOOK_URL", "MASTER_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.bot_token is None
    assert not settings.webhook_mode
    assert settings.resolved_database_url.startswith("sqlite+aiosqlite:///")
    assert settings.telegram_api_server == "https://api.telegram.org"


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_TOKEN", "123456:ABCDEF")
    monkeypatch.setenv("ADMIN_IDS", "1, 2,3")
    monkeypatch.setenv("WEBHOOK_URL", "https://example.org/hook")
    monkeypatch.setenv("THROTTLE__RATE", "10")
    settings = Settings()
    assert settings.admin_ids == [1, 2, 3]
    assert settings.webhook_mode
    assert settings.throttle.rate == 10
    assert "ABCDEF" not in repr(settings)


def test_master_key_is_generated_once_with_private_permissions(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", master_key=None)
    key = settings.resolved_master_key().get_secret_value()
    path = tmp_path / "data" / "master.key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = Settings(data_dir=tmp_path / "data", master_key=None).resolved_master_key().get_secret_value()
    assert key == again and len(key) >= 32


def test_bot_tokens_and_registered_secrets_are_scrubbed() -> None:
    register_secret("exchange-secret-value-123")
    text = "calling https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/getMe"
    assert "AAHdqTcv" not in redact_text(text)
    event = redact_processor(None, "info", {"event": "x exchange-secret-value-123", "api_key": "k", "n": 1})
    assert "exchange-secret-value-123" not in json.dumps(event)
    assert event["api_key"] == "***" and event["n"] == 1


def test_log_records_never_show_a_token(capsys: pytest.CaptureFixture[str]) -> None:
    from bot.logging import setup_logging

    setup_logging("INFO", "json")
    token = "987654321:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    logging.getLogger("any").warning("request to /bot%s/sendMessage", token)
    err = capsys.readouterr().err
    assert "AAHdqTcv" not in err and "/bot***" in err
