"""What handlers can ask for by parameter name."""

from __future__ import annotations

from typing import TypedDict

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.metrics import Metrics
from bot.settings import Settings
from services.i18n import I18n
from services.tenants import TenantInfo
from services.throttling import RateLimiter


class WorkflowData(TypedDict):
    """App-scoped objects, given to the Dispatcher once (`Dispatcher(**workflow_data)`)."""

    settings: Settings
    i18n_hub: I18n
    session_factory: async_sessionmaker[AsyncSession]
    rate_limiter: RateLimiter
    tenant: TenantInfo
    metrics: Metrics
    redis: Redis | None
    admin_ids: frozenset[int]
    # Per update, added by the middlewares: session (AsyncSession), user (UserProfile),
    # user_service (UserService), i18n (Translator), locale (str).
