"""Admins hear about transitions: one message when a component goes down, one when it recovers, each in
the admin's language."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import User
from services.controller.controller import Transition
from services.notify import Notifier

log = logging.getLogger(__name__)

LocaleOf = Callable[[int], Awaitable[str | None]]

DOWN_KEY = "admin.alert.down"
RECOVERED_KEY = "admin.alert.recovered"


def format_duration(value: timedelta | None) -> str:
    """``1h 2m``, ``3m 4s``, ``5s``: compact and the same in every language."""
    if value is None:
        return "—"
    seconds = max(0, int(value.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def user_locales(session_factory: async_sessionmaker[AsyncSession]) -> LocaleOf:
    """The language an admin chose (or Telegram's), read from the users table; None if never seen."""

    async def locale_of(telegram_id: int) -> str | None:
        async with session_factory() as session:
            row = (
                await session.execute(
                    select(User.locale, User.language_code)
                    .where(User.telegram_id == telegram_id)
                    .order_by(User.last_seen_at.desc())
                    .limit(1)
                )
            ).first()
        if row is None:
            return None
        return row.locale or row.language_code

    return locale_of


class AdminAlerts:
    """A transition callback for :meth:`Controller.on_transition`. With ``active``, only while it answers
    True (e.g. while this process leads the scheduler, so several processes do not alert twice)."""

    def __init__(
        self,
        notifier: Notifier,
        admin_ids: Iterable[int],
        locale_of: LocaleOf | None = None,
        *,
        active: Callable[[], bool] | None = None,
    ) -> None:
        self.notifier = notifier
        self.admin_ids = tuple(dict.fromkeys(admin_ids))
        self.locale_of = locale_of
        self.active = active

    async def _locale(self, telegram_id: int) -> str | None:
        if self.locale_of is None:
            return None
        try:
            return await self.locale_of(telegram_id)
        except Exception:
            log.exception("looking up an admin's language failed")
            return None

    async def __call__(self, transition: Transition) -> None:
        if self.active is not None and not self.active():
            return
        if transition.recovered:
            key = RECOVERED_KEY
            params = {"component": transition.label, "duration": format_duration(transition.down_for)}
        else:
            key = DOWN_KEY
            params = {"component": transition.label, "detail": transition.health.detail or "—"}
        for admin_id in self.admin_ids:
            try:
                await self.notifier.send(admin_id, await self._locale(admin_id), key, **params)
            except Exception:
                log.exception("alerting admin %s failed", admin_id)
