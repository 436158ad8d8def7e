"""The master controller end to end: an exchange goes down and comes back; admins hear about it once each
way in their language, /healthz and /metrics follow, and /status shows it (admins only)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bot.health import bind_metrics, build_controller
from bot.notifier import TelegramNotifier
from bot.settings import ExchangeSettings
from scheduler.health import HEALTH_JOB_ID, alert_admins, health_job, track_jobs
from services.controller import Controller, JobStats
from tests.stack import Stack, bot_stack

ADMIN, RU_ADMIN, MEMBER = 7001, 7002, 7003


def wire(stack: Stack) -> Controller:
    """The running bot's controller; built and wired here as the factory and the runner do when the bot
    does not build one itself."""
    app = stack.app
    existing = getattr(app, "controller", None)
    if isinstance(existing, Controller):
        return existing
    controller = build_controller(
        engine=app.engine, bot=app.bot, redis=app.redis, exchanges=app.exchanges, check_timeout=5.0
    )
    bind_metrics(controller, app.metrics, app.exchanges)
    assert stack.running.scheduler is not None
    track_jobs(stack.running.scheduler, controller.jobs)
    notifier = TelegramNotifier(app.bot, app.i18n, stack.running.sender, wait_for_delivery=False)
    alert_admins(controller, notifier, app.settings.admin_ids, app.session_factory)
    app.health.controller = controller
    app.dispatcher["controller"] = controller
    return controller


async def fetch(stack: Stack) -> tuple[int, dict[str, Any], str]:
    async with aiohttp.ClientSession() as http:
        async with http.get(stack.running.base_url + "/healthz") as response:
            status, health = response.status, await response.json()
        async with http.get(stack.running.base_url + "/metrics") as response:
            metrics = await response.text()
    return status, health, metrics


async def test_a_component_going_down_and_up(tmp_path: Path, sqlite_url: str) -> None:
    exchange = ExchangeSettings(timeout_ms=2000, breaker_failures=2, breaker_reset_seconds=1.0)
    async with bot_stack(
        tmp_path, database_url=sqlite_url, exchanges=True, exchange=exchange, admin_ids=[ADMIN, RU_ADMIN]
    ) as stack:
        admin = stack.user(ADMIN, language_code="en")
        ru_admin = stack.user(RU_ADMIN, language_code="ru")
        member = stack.user(MEMBER, language_code="en")
        for user in (admin, ru_admin, member):
            await user.send("/start")
            await user.next_message()
        controller = wire(stack)

        # the job as the scheduler runs it (and counts it)
        scheduler = stack.running.scheduler
        assert scheduler is not None
        if scheduler.get_job(HEALTH_JOB_ID) is None:
            scheduler.add_job(health_job, "interval", seconds=3600, args=(controller,), id=HEALTH_JOB_ID)
        scheduler.modify_job(HEALTH_JOB_ID, next_run_time=datetime.now(UTC))
        for _ in range(100):
            if controller.jobs.stats().get("health", JobStats("health")).runs:
                break
            await asyncio.sleep(0.05)
        assert controller.jobs.stats()["health"].failures == 0
        assert await health_job(controller) == 0
        assert controller.snapshot().get("kraken").status.value == "up"  # type: ignore[union-attr]
        before = len(stack.bot_messages(ADMIN)), len(stack.bot_messages(RU_ADMIN))

        # kraken goes down: one message to each admin, however many checks run
        stack.exchanges["kraken"].outage(True)
        await asyncio.sleep(0.5)  # past the sharing of public market data
        await health_job(controller)
        down = await admin.next_message(timeout=10)
        assert "Kraken" in down.text and "is down" in down.text
        ru_down = await ru_admin.next_message(timeout=10)
        assert "Kraken" in ru_down.text and "недоступен" in ru_down.text
        await health_job(controller)
        await health_job(controller)
        await admin.sleep_until_idle(quiet=0.5)
        assert len(stack.bot_messages(ADMIN)) == before[0] + 1
        assert len(stack.bot_messages(RU_ADMIN)) == before[1] + 1

        status, health, metrics = await fetch(stack)
        assert status == 200 and health["status"] == "ok"  # an exchange outage is not the bot's
        assert health["components"]["kraken"]["status"] == "down"
        assert health["components"]["kraken"]["breaker"] == "open"
        assert health["components"]["binance"]["status"] == "up"
        assert health["components"]["database"]["status"] == "up"
        assert "kraken" in health["degraded"]
        assert health["bot"]["ok"] and health["redis"] == {"ok": True, "enabled": False}
        assert 'cu_component_up{component="kraken",kind="exchange"} 0.0' in metrics
        assert 'cu_component_up{component="binance",kind="exchange"} 1.0' in metrics
        assert 'cu_breaker_state{exchange="kraken"} 2.0' in metrics
        assert 'cu_component_transitions_total{component="kraken",to="down"} 1.0' in metrics
        assert re.search(r'cu_job_runs_total\{job="health"\} [1-9]', metrics)

        # /status shows it to an admin
        await admin.send("/status")
        card = await admin.next_message(timeout=15)
        assert "System status" in card.text
        assert "🔴 Kraken: down" in card.text and "breaker open" in card.text
        assert "🟢 Binance: up" in card.text and "🟢 Database: up" in card.text
        assert card.button_texts == ["🔄 Refresh"]

        # a member never learns the command exists
        await member.send("/status")
        answer = await member.next_message()
        assert "don't know the command /status" in answer.text

        # kraken is back: the next check is the breaker's probe; one "recovered" message each
        stack.exchanges["kraken"].outage(False)
        await asyncio.sleep(1.1)
        await health_job(controller)
        recovered = await admin.next_message(timeout=10)
        assert "Kraken" in recovered.text and "recovered" in recovered.text
        ru_recovered = await ru_admin.next_message(timeout=10)
        assert "снова работает" in ru_recovered.text
        await health_job(controller)
        await admin.sleep_until_idle(quiet=0.5)
        assert len(stack.bot_messages(ADMIN)) == before[0] + 3  # down, the status card, recovered
        assert len(stack.bot_messages(RU_ADMIN)) == before[1] + 2

        status, health, metrics = await fetch(stack)
        assert status == 200 and health["components"]["kraken"]["status"] == "up"
        assert health["components"]["kraken"]["breaker"] == "closed"
        assert "kraken" not in health["degraded"]
        assert 'cu_component_up{component="kraken",kind="exchange"} 1.0' in metrics
        assert 'cu_breaker_state{exchange="kraken"} 0.0' in metrics
        assert 'cu_component_transitions_total{component="kraken",to="up"} 1.0' in metrics

        # Refresh runs the checks again and edits the card in place
        await admin.press(card, text="🔄 Refresh")
        edited = await admin.next_message(timeout=15)
        assert edited.message_id == card.message_id
        assert "🟢 Kraken: up" in edited.text and "breaker closed" in edited.text
        assert edited.button_texts == ["🔄 Refresh"]


async def test_status_without_a_controller_and_for_members(tmp_path: Path, sqlite_url: str) -> None:
    async with bot_stack(tmp_path, database_url=sqlite_url, admin_ids=[ADMIN]) as stack:
        stack.app.dispatcher.workflow_data.pop("controller", None)
        admin = stack.user(ADMIN)
        await admin.send("/status")
        reply = await admin.next_message()
        assert "not running" in reply.text
        member = stack.user(MEMBER)
        await member.send("/status")
        assert "don't know the command" in (await member.next_message()).text
