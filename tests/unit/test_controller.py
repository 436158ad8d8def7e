"""The master controller's state machine: transitions once per change, hysteresis against flapping,
timeouts and errors as failures, recovery with backoff, the circuit breakers' evidence, admin alerts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import pytest

from bot.health import bind_metrics
from bot.metrics import Metrics
from handlers.admin import render_status
from services.controller import (
    AdminAlerts,
    Component,
    Controller,
    ExchangeComponent,
    Health,
    JobTracker,
    SchedulerComponent,
    Status,
    Transition,
    format_duration,
)
from services.exchanges.breaker import BreakerState
from services.exchanges.errors import ExchangeTemporaryError
from services.exchanges.registry import ExchangeConfig, ExchangeRegistry
from services.i18n import I18n


class Fake(Component):
    """Answers with the scripted results in turn (the last one repeats); ``"raise"`` raises, a float
    sleeps that long first."""

    kind = "fake"

    def __init__(self, name: str, results: Iterable[Any] = ("up",), *, recoverable: bool = False) -> None:
        self.name = name
        self.label = name.title()
        self.results = list(results)
        self.recoverable = recoverable
        self.checks = 0
        self.recoveries = 0
        self.recover_fails = False

    def script(self, *results: Any) -> None:
        self.results = list(results)

    async def check(self) -> Health:
        self.checks += 1
        result = self.results.pop(0) if len(self.results) > 1 else self.results[0]
        if isinstance(result, float):
            await asyncio.sleep(result)
            return Health.up()
        if result == "raise":
            raise ConnectionResetError("peer said no")
        return Health(Status(result), f"{result} detail")

    async def recover(self) -> None:
        self.recoveries += 1
        if self.recover_fails:
            raise OSError("still broken")
        self.results = ["up"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def recording(controller: Controller) -> list[Transition]:
    seen: list[Transition] = []

    async def callback(transition: Transition) -> None:
        await asyncio.sleep(0)
        seen.append(transition)

    controller.on_transition(callback)
    return seen


async def rounds(controller: Controller, n: int) -> None:
    for _ in range(n):
        await controller.check_all()


async def test_a_component_going_down_and_up_is_one_transition_each_way() -> None:
    controller = Controller(down_after=2, up_after=2)
    db = controller.register(Fake("db"))
    assert isinstance(db, Fake)
    seen = recording(controller)

    await controller.check_all()
    assert controller.status("db") is Status.UP and seen == []

    db.script("down")
    await controller.check_all()
    assert controller.status("db") is Status.UP  # one failure is not enough
    assert controller.snapshot().get("db").last_status is Status.DOWN  # type: ignore[union-attr]
    await rounds(controller, 3)
    assert controller.status("db") is Status.DOWN
    assert [(t.name, t.old, t.new) for t in seen] == [("db", Status.UP, Status.DOWN)]
    assert seen[0].health.detail == "down detail" and not seen[0].recovered

    db.script("up")
    await controller.check_all()
    assert controller.status("db") is Status.DOWN  # one success is not enough either
    await rounds(controller, 3)
    assert controller.status("db") is Status.UP
    assert len(seen) == 2 and seen[1].recovered and seen[1].down_for is not None


async def test_flapping_does_not_flood() -> None:
    controller = Controller(down_after=2, up_after=2)
    flaky = controller.register(Fake("flaky"))
    seen = recording(controller)
    await controller.check_all()
    assert isinstance(flaky, Fake)
    flaky.script(*(["down", "up"] * 10))
    await rounds(controller, 20)
    assert seen == [] and controller.status("flaky") is Status.UP

    # down for good, then flapping while down: still one transition
    flaky.script("down", "down", *(["up", "down"] * 5))
    await rounds(controller, 12)
    assert [t.new for t in seen] == [Status.DOWN]
    assert controller.status("flaky") is Status.DOWN


async def test_up_and_degraded_switch_without_alerts() -> None:
    controller = Controller()
    part = controller.register(Fake("part", ["up", "degraded", "up"]))
    seen = recording(controller)
    await controller.check_all()
    await controller.check_all()
    assert controller.status("part") is Status.DEGRADED
    await controller.check_all()
    assert controller.status("part") is Status.UP and seen == []
    assert isinstance(part, Fake)


async def test_a_component_down_from_the_start_is_reported() -> None:
    controller = Controller(down_after=2)
    controller.register(Fake("cache", ["down"]))
    controller.register(Fake("db"))
    seen = recording(controller)
    snapshot = await controller.check_all()
    assert snapshot.get("cache").status is Status.UNKNOWN  # type: ignore[union-attr]
    assert snapshot.get("db").status is Status.UP  # type: ignore[union-attr]
    await controller.check_all()
    assert [(t.name, t.old, t.new) for t in seen] == [("cache", Status.UNKNOWN, Status.DOWN)]


async def test_a_timeout_or_an_exception_is_down() -> None:
    controller = Controller(check_timeout=0.1, down_after=1)
    controller.register(Fake("slow", [5.0]))
    controller.register(Fake("broken", ["raise"]))
    seen = recording(controller)
    started = time.monotonic()
    snapshot = await controller.check_all()
    assert time.monotonic() - started < 1.0
    slow, broken = snapshot.get("slow"), snapshot.get("broken")
    assert slow is not None and slow.status is Status.DOWN and "no answer in 0.1s" in slow.detail
    assert broken is not None and broken.status is Status.DOWN and broken.detail == "ConnectionResetError"
    assert "peer said no" not in broken.detail
    assert sorted(t.name for t in seen) == ["broken", "slow"]


async def test_checks_run_concurrently_and_share_a_round() -> None:
    controller = Controller()
    components = [controller.register(Fake(f"c{i}", [0.2])) for i in range(5)]
    started = time.monotonic()
    first, second = await asyncio.gather(controller.check_all(), controller.check_all())
    assert time.monotonic() - started < 0.6
    assert first == second
    assert all(isinstance(c, Fake) and c.checks == 1 for c in components)


async def test_recovery_is_attempted_with_backoff() -> None:
    clock = Clock()
    controller = Controller(down_after=1, up_after=1, recovery_base=10, recovery_max=40, clock=clock)
    cache = Fake("cache", ["down"], recoverable=True)
    controller.register(cache)
    seen = recording(controller)

    cache.recover_fails = True
    await controller.check_all()
    assert cache.recoveries == 1 and controller.status("cache") is Status.DOWN
    view = controller.snapshot().get("cache")
    assert view is not None and view.info["last_recovery_error"] == "OSError"
    await controller.check_all()
    assert cache.recoveries == 1  # within the backoff delay
    clock.now += 10
    await controller.check_all()
    assert cache.recoveries == 2
    clock.now += 10
    await controller.check_all()
    assert cache.recoveries == 2  # the delay doubled
    clock.now += 10
    cache.recover_fails = False
    await controller.check_all()
    assert cache.recoveries == 3
    assert controller.status("cache") is Status.UP  # recovered, then checked again at once
    assert [t.recovered for t in seen] == [False, True]
    assert controller.snapshot().get("cache").recovery_attempts == 0  # type: ignore[union-attr]


async def test_a_component_without_recovery_is_left_alone() -> None:
    controller = Controller(down_after=1)
    plain = controller.register(Fake("plain", ["down"]))
    await rounds(controller, 3)
    assert isinstance(plain, Fake) and plain.recoveries == 0


async def test_the_circuit_breaker_feeds_the_exchange_component() -> None:
    registry = ExchangeRegistry(
        {"kraken": ExchangeConfig(api_url="http://127.0.0.1:9", breaker_failures=2, breaker_reset_seconds=60)}
    )
    try:
        controller = Controller(down_after=3)
        controller.register(ExchangeComponent(registry, "kraken"))
        controller.watch_breakers(registry)
        seen = recording(controller)
        breaker = registry.breaker("kraken")

        async def failing() -> None:
            raise ExchangeTemporaryError(exchange="kraken", reason="maintenance")

        for _ in range(2):
            with pytest.raises(ExchangeTemporaryError):
                await breaker.call(failing)
        assert breaker.state is BreakerState.OPEN
        await controller.drain()
        assert controller.status("kraken") is Status.DOWN  # at once, without waiting for 3 checks
        assert [(t.name, t.new) for t in seen] == [("kraken", Status.DOWN)]

        snapshot = await controller.check_all()  # open: answered without a request
        view = snapshot.get("kraken")
        assert view is not None and "circuit open" in view.detail and view.info["breaker"] == "open"
        assert len(seen) == 1

        async def fine() -> None:
            return None

        breaker._opened_at -= 61  # the pause is over: the next call is the half-open probe
        await breaker.call(fine)
        assert breaker.state is BreakerState.CLOSED
        await controller.drain()
        assert controller.status("kraken") is Status.UP
        assert [t.recovered for t in seen] == [False, True]
        controller.close()
    finally:
        await registry.close()


async def test_the_scheduler_component_follows_the_jobs() -> None:
    tracker = JobTracker()
    component = SchedulerComponent(tracker)
    assert (await component.check()).status is Status.DOWN
    running = [True]
    tracker.attach(lambda: running[0], lambda: [])
    tracker.record("watch", ok=True)
    assert (await component.check()).status is Status.UP
    tracker.record("watch", ok=False, error="ValueError")
    health = await component.check()
    assert health.status is Status.DEGRADED and "watch" in health.detail
    jobs = component.describe()["jobs"]
    assert jobs[0]["runs"] == 2 and jobs[0]["failures"] == 1 and jobs[0]["last_error"] == "ValueError"
    tracker.record("watch", ok=True)
    assert (await component.check()).status is Status.UP
    running[0] = False
    assert (await component.check()).status is Status.DOWN
    tracker.attach(lambda: True, lambda: [], paused=lambda: True)
    standby = await component.check()
    assert standby.status is Status.UP and "standby" in standby.detail


class RecordingNotifier:
    def __init__(self) -> None:
        self.sent: list[tuple[int, str | None, str, dict[str, Any]]] = []

    async def send(self, telegram_id: int, locale: str | None, key: str, **params: Any) -> bool:
        self.sent.append((telegram_id, locale, key, params))
        return True


async def test_admins_hear_once_per_transition_in_their_language() -> None:
    notifier = RecordingNotifier()
    locales = {1: "ru", 2: None}

    async def locale_of(telegram_id: int) -> str | None:
        return locales[telegram_id]

    controller = Controller(down_after=1, up_after=1)
    db = controller.register(Fake("db"))
    assert isinstance(db, Fake)
    controller.on_transition(AdminAlerts(notifier, [1, 2, 1], locale_of))
    await controller.check_all()
    db.script("down")
    await rounds(controller, 3)
    db.script("up")
    await rounds(controller, 3)
    assert [(to, loc, key) for to, loc, key, _ in notifier.sent] == [
        (1, "ru", "admin.alert.down"),
        (2, None, "admin.alert.down"),
        (1, "ru", "admin.alert.recovered"),
        (2, None, "admin.alert.recovered"),
    ]
    assert notifier.sent[0][3] == {"component": "Db", "detail": "down detail"}
    assert set(notifier.sent[2][3]) == {"component", "duration"}


async def test_only_the_active_process_alerts() -> None:
    notifier = RecordingNotifier()
    leader = [False]
    controller = Controller(down_after=1, up_after=1)
    db = controller.register(Fake("db", ["down"]))
    controller.on_transition(AdminAlerts(notifier, [1], active=lambda: leader[0]))
    await controller.check_all()
    assert notifier.sent == []
    leader[0] = True
    assert isinstance(db, Fake)
    db.script("up")
    await controller.check_all()
    assert [key for _, _, key, _ in notifier.sent] == ["admin.alert.recovered"]


def test_durations_read_compactly() -> None:
    assert format_duration(timedelta(seconds=5)) == "5s"
    assert format_duration(timedelta(minutes=3, seconds=4)) == "3m 4s"
    assert format_duration(timedelta(hours=1, minutes=2, seconds=9)) == "1h 2m"
    assert format_duration(timedelta(days=2, hours=3)) == "2d 3h"
    assert format_duration(None) == "—"


async def test_metrics_follow_the_controller() -> None:
    metrics = Metrics()
    controller = Controller(down_after=1, up_after=1)
    db = controller.register(Fake("db"))
    assert isinstance(db, Fake)
    bind_metrics(controller, metrics)
    await controller.check_all()
    controller.jobs.record("health", ok=True)
    controller.jobs.record("health", ok=False, error="OSError")
    text = metrics.render().decode()
    assert 'cu_component_up{component="db",kind="fake"} 1.0' in text
    assert 'cu_job_runs_total{job="health"} 2.0' in text
    assert 'cu_job_failures_total{job="health"} 1.0' in text
    db.script("down")
    await controller.check_all()
    text = metrics.render().decode()
    assert 'cu_component_up{component="db",kind="fake"} 0.0' in text
    assert 'cu_component_transitions_total{component="db",to="down"} 1.0' in text


async def test_the_status_card_renders_in_every_language() -> None:
    hub = I18n()
    controller = Controller(down_after=1)
    controller.register(Fake("database"))
    controller.register(Fake("kraken", ["down"]))
    tracker_component = SchedulerComponent(controller.jobs)
    controller.register(tracker_component)
    controller.jobs.attach(lambda: True, lambda: [])
    controller.jobs.record("protections", ok=False, error="ValueError")
    snapshot = await controller.check_all()
    for locale in hub.locales:
        text = render_status(hub.translator(locale), snapshot)
        assert "admin." not in text, (locale, text)
        assert "🔴" in text and "🟢" in text and "protections" in text and "ValueError" in text
    english = render_status(hub.translator("en"), snapshot)
    assert "2 components need attention" in english and "Database" in english


async def test_healthz_reports_components_and_fails_when_an_essential_one_is_down(tmp_path: Any) -> None:
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer

    from bot.health import HealthChecker
    from db.engine import create_engine

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'health.db'}")
    unreachable = AiohttpSession(api=TelegramAPIServer.from_base("http://127.0.0.1:9"))
    bot = Bot("42:TEST", session=unreachable)
    controller = Controller(down_after=1)
    controller.register(Fake("kraken", ["down"]))
    checker = HealthChecker(engine=engine, bot=bot, metrics=Metrics(), controller=controller)
    try:
        await controller.check_all()
        report = await checker.report()
        assert report["database"]["ok"] and not report["bot"]["ok"]
        assert report["status"] == "down"  # Telegram is essential: /healthz answers 503
        assert report["components"]["kraken"]["status"] == "down"
        assert report["degraded"] == ["kraken"]
    finally:
        await bot.session.close()
        await engine.dispose()
