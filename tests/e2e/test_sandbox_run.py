"""The README's first command on a fresh machine: `cryptouniverse run` without BOT_TOKEN starts the
sandbox (emulator + bot + web chat) on SQLite, and a person can use it from the browser."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from sandbox.telegram.client import EmulatorClient
from tests.e2e.test_webchat_browser import CHROMIUM_ARGS, chromium_path  # noqa: F401  (fixture)
from tests.stack import free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class SandboxProcess:
    process: subprocess.Popen[bytes]
    web_chat: str
    http: str
    workdir: Path
    log: Path


async def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"the bot exited early:\n{log.read_text()[-3000:]}")
            try:
                async with http.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                    if response.status == 200:
                        return
            except (TimeoutError, aiohttp.ClientError):
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"not up after {limit}s:\n{log.read_text()[-3000:]}")


@pytest.fixture
async def sandbox_process(tmp_path: Path) -> AsyncIterator[SandboxProcess]:
    sandbox_port, http_port = free_port(), free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"BOT_TOKEN", "DATABASE_URL", "REDIS_URL", "WEBHOOK_URL", "MASTER_KEY"}
    }
    env.update(SANDBOX_PORT=str(sandbox_port), HTTP_PORT=str(http_port), PYTHONPATH=str(ROOT))
    log = tmp_path / "bot.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "run"], cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    handle = SandboxProcess(
        process, f"http://127.0.0.1:{sandbox_port}", f"http://127.0.0.1:{http_port}", tmp_path, log
    )
    try:
        await _wait_until_up(handle.http + "/healthz", process, log)
        yield handle
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                raise


async def test_run_without_token_starts_the_sandbox(sandbox_process: SandboxProcess) -> None:
    async with EmulatorClient(sandbox_process.web_chat) as client:
        user = client.user(4242, first_name="Sam", language_code="en")
        await user.send("/start")
        reply = await user.next_message(timeout=10)
        assert "Hi, Sam!" in reply.text
        assert "⚙️ Settings" in reply.button_texts
        await user.press(reply, text="⚙️ Settings")
        card = await user.next_message(timeout=10)
        assert "Plan: Free" in card.text
    async with aiohttp.ClientSession() as http, http.get(sandbox_process.web_chat + "/") as page:
        assert page.status == 200 and "<html" in (await page.text()).lower()
    log = sandbox_process.log.read_text()
    assert "BOT_TOKEN is not set" in log
    key = sandbox_process.workdir / "data" / "master.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (sandbox_process.workdir / "data" / "cryptouniverse.db").exists()
    assert key.read_text().strip() not in log

    sandbox_process.process.send_signal(signal.SIGTERM)
    assert sandbox_process.process.wait(timeout=20) == 0


@pytest.mark.browser
async def test_a_person_uses_the_bot_from_the_web_chat(
    sandbox_process: SandboxProcess, chromium_path: str  # noqa: F811
) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        page = await (await browser.new_context(locale="en-US")).new_page()
        page.set_default_timeout(15_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            await page.goto(sandbox_process.web_chat + "/?poll_timeout=2")
            box = page.get_by_test_id("message-input")
            await box.fill("/start")
            await box.press("Enter")
            bot_message = page.locator('[data-testid="message"][data-from="bot"]').last
            await bot_message.get_by_text("Main menu").wait_for()
            assert await bot_message.locator("b").count() >= 1
            await bot_message.get_by_test_id("inline-button").filter(has_text="Market").click()
            await page.get_by_text("Pick a coin").wait_for()
            await page.get_by_test_id("inline-button").filter(has_text="📊 BTC").last.click()
            chart = page.locator('[data-testid="message"][data-from="bot"]').filter(has_text="Score:").last
            await chart.wait_for(timeout=30_000)
            assert await chart.locator("img").count() == 1
            await page.get_by_test_id("inline-button").filter(has_text="Main menu").last.click()
            await page.locator('[data-testid="message"][data-from="bot"]').filter(
                has_text="choose an area"
            ).last.wait_for()
            await page.screenshot(path=str(sandbox_process.workdir / "sandbox.png"))
        finally:
            await browser.close()
        assert not errors, errors
