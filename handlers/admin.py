"""Admins only: /status shows the master controller's view of every component, with a Refresh button.
Others never learn the command exists: their /status falls through to the unknown-command answer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiogram import Bot, F, Router
from aiogram.enums import ChatAction
from aiogram.filters import Command, Filter
from aiogram.types import CallbackQuery, Message, TelegramObject, User
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.filters import PRIVATE
from handlers.render import show
from keyboards.admin import StatusCB, status_keyboard
from services.controller import ComponentView, Controller, Snapshot, Status
from services.i18n import Translator

STATUS_EMOJI = {Status.UP: "🟢", Status.DEGRADED: "🟡", Status.DOWN: "🔴", Status.UNKNOWN: "⚪"}
SEPARATOR = " · "


class IsAdmin(Filter):
    """The sender's Telegram id is in ADMIN_IDS."""

    async def __call__(
        self,
        event: TelegramObject,
        event_from_user: User | None = None,
        admin_ids: frozenset[int] = frozenset(),
    ) -> bool:
        return event_from_user is not None and event_from_user.id in admin_ids


ADMIN = IsAdmin()


def build_router() -> Router:
    router = Router(name="admin")
    router.message.filter(PRIVATE, ADMIN)
    router.callback_query.filter(ADMIN)
    router.message.register(cmd_status, Command("status"))
    router.callback_query.register(on_refresh, StatusCB.filter(F.action == "refresh"))
    return router


def _time(value: datetime | None) -> str:
    return (value or datetime.now(UTC)).astimezone(UTC).strftime("%H:%M:%S")


def _iso_time(value: Any) -> str | None:
    if not value:
        return None
    try:
        return _time(datetime.fromisoformat(str(value)))
    except ValueError:
        return None


def _name(t: Translator, component: ComponentView) -> str:
    key = f"admin.components.{component.name}"
    return t(key) if t.has(key) else component.label


def _component_line(t: Translator, component: ComponentView) -> str:
    parts = [
        t(
            "admin.status.line",
            emoji=STATUS_EMOJI[component.status],
            name=_name(t, component),
            status=t(f"admin.states.{component.status.value}"),
        )
    ]
    if component.checked_at is None:
        parts.append(t("admin.status.never_checked"))
    elif component.latency_ms is not None:
        parts.append(t("admin.status.latency", ms=round(component.latency_ms)))
    breaker = component.info.get("breaker")
    if breaker:
        parts.append(t("admin.status.breaker", state=t(f"admin.breaker.{breaker}")))
        if component.info.get("retry_in"):
            parts.append(t("admin.status.retry_in", seconds=int(component.info["retry_in"])))
    line = SEPARATOR.join(parts)
    if component.detail and component.last_status is not Status.UP:
        line += "\n    " + t("admin.status.detail", detail=component.detail)
    return line


def _job_lines(t: Translator, snapshot: Snapshot) -> list[str]:
    jobs: list[dict[str, Any]] = []
    for component in snapshot.components:
        if component.kind == "scheduler":
            jobs.extend(component.info.get("jobs") or [])
    if not jobs:
        return [t("admin.status.no_jobs")]
    lines = []
    for job in jobs:
        line = t(
            "admin.status.job",
            emoji="❗" if job.get("failing") else "•",
            job=job["id"],
            last=_iso_time(job.get("last_run_at")) or t("admin.status.never"),
            runs=int(job.get("runs", 0)),
            failures=int(job.get("failures", 0)),
        )
        if job.get("failing") and job.get("last_error"):
            line += SEPARATOR + t("admin.status.job_error", error=job["last_error"])
        lines.append(line)
    return lines


def render_status(t: Translator, snapshot: Snapshot) -> str:
    problems = snapshot.not_up
    lines = [
        t("admin.status.title", time=_time(snapshot.checked_at)),
        t("admin.status.problems", count=len(problems)) if problems else t("admin.status.all_up"),
        "",
        t("admin.status.components"),
        *(_component_line(t, component) for component in snapshot.components),
        "",
        t("admin.status.jobs"),
        *_job_lines(t, snapshot),
    ]
    return "\n".join(lines)


async def cmd_status(
    message: Message,
    i18n: Translator,
    bot: Bot,
    session: AsyncSession,
    controller: Controller | None = None,
) -> None:
    if controller is None:
        await message.answer(i18n("admin.status.unavailable"))
        return
    await bot.send_chat_action(message.chat.id, ChatAction.TYPING)
    await session.commit()  # no transaction (on SQLite: the write lock) held while the checks run
    snapshot = await controller.check_all()
    await message.answer(render_status(i18n, snapshot), reply_markup=status_keyboard(i18n))


async def on_refresh(
    query: CallbackQuery, i18n: Translator, session: AsyncSession, controller: Controller | None = None
) -> None:
    if controller is None:
        await show(query, i18n("admin.status.unavailable"), None)
        return
    await session.commit()
    snapshot = await controller.check_all()
    await show(query, render_status(i18n, snapshot), status_keyboard(i18n))
