"""Users and their preferences."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import User
from db.repositories import AuditRepository, UserRepository
from db.types import utcnow
from services.errors import ValidationError

LAST_SEEN_RESOLUTION = timedelta(minutes=5)


def profile_of(user: User) -> UserProfile:
    """The profile of a user row (scheduled jobs act for users outside any update)."""
    return _profile({column: getattr(user, column) for column in _PROFILE_COLUMNS})


_PROFILE_COLUMNS = (
    "id",
    "tenant_id",
    "telegram_id",
    "username",
    "first_name",
    "language_code",
    "locale",
    "role",
    "tier",
    "created_at",
    "last_seen_at",
)


@dataclass(frozen=True, slots=True)
class UserProfile:
    id: int
    tenant_id: int
    telegram_id: int
    username: str | None
    first_name: str | None
    language_code: str | None
    locale: str | None
    role: str
    tier: str
    created_at: datetime
    last_seen_at: datetime
    is_new: bool = False

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _profile(user: Mapping[str, Any] | RowMapping, *, is_new: bool = False) -> UserProfile:
    return UserProfile(
        id=user["id"],
        tenant_id=user["tenant_id"],
        telegram_id=user["telegram_id"],
        username=user["username"],
        first_name=user["first_name"],
        language_code=user["language_code"],
        locale=user["locale"],
        role=user["role"],
        tier=user["tier"],
        created_at=user["created_at"],
        last_seen_at=user["last_seen_at"],
        is_new=is_new,
    )


@dataclass(frozen=True, slots=True)
class KnownUserRow:
    """The user's row as read just before (None: there is no such user yet)."""

    row: Mapping[str, Any] | None


class UserService:
    def __init__(self, session: AsyncSession, admin_ids: frozenset[int] = frozenset()) -> None:
        self.session = session
        self.users = UserRepository(session)
        self.audit = AuditRepository(session)
        self.admin_ids = admin_ids

    async def touch(
        self,
        *,
        tenant_id: int,
        telegram_id: int,
        username: str | None,
        first_name: str | None,
        language_code: str | None,
        known: KnownUserRow | None = None,
    ) -> UserProfile:
        """Find or create the user; refresh what Telegram tells about them and when they were last seen.

        Writes only when something changed (or last_seen is older than a few minutes), so a busy user
        costs one indexed read per update, or none when the caller already read the row (`known`).
        """
        now = utcnow()
        role = "admin" if telegram_id in self.admin_ids else "user"
        row = known.row if known is not None else await self.users.get_row(tenant_id, telegram_id)
        if row is None:
            await self.users.insert_if_absent(
                tenant_id=tenant_id,
                telegram_id=telegram_id,
                username=username,
                first_name=first_name,
                language_code=language_code,
                role=role,
                now=now,
            )
            row = await self.users.get_row(tenant_id, telegram_id)
            assert row is not None
            return _profile(row, is_new=row["created_at"] >= now - timedelta(seconds=5))
        changes: dict[str, object] = {}
        told = (row["username"], row["first_name"], row["language_code"])
        if told != (username, first_name, language_code):
            changes.update(username=username, first_name=first_name, language_code=language_code)
        if row["role"] != role and row["role"] in ("user", "admin"):
            changes["role"] = role
        if now - row["last_seen_at"] >= LAST_SEEN_RESOLUTION:
            changes["last_seen_at"] = now
        if not changes:
            return _profile(row)
        await self.users.update_fields(row["id"], **changes)
        return _profile({**row, **changes})

    async def set_locale(self, user: UserProfile, locale: str, available: tuple[str, ...]) -> UserProfile:
        if locale not in available:
            raise ValidationError("errors.unknown_language", language=locale)
        await self.users.update_fields(user.id, locale=locale)
        await self.audit.add(
            "user.locale_changed",
            tenant_id=user.tenant_id,
            user_id=user.id,
            details={"from": user.locale, "to": locale},
        )
        await self.session.flush()
        return dataclasses.replace(user, locale=locale)
