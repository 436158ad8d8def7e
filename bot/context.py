"""What handlers can ask for by parameter name."""

from __future__ import annotations

from typing import NotRequired, TypedDict

from pydantic import SecretStr
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.metrics import Metrics
from bot.settings import Settings
from services.billing.plans import Catalogue
from services.billing.stripe_checkout import StripeBilling
from services.consensus.service import ConsensusService
from services.controller import Controller
from services.copytrading.relay import CopyRelay
from services.exchanges.registry import ExchangeRegistry
from services.i18n import I18n
from services.market.data import MarketDataService
from services.market.report import ReportService
from services.market.scanner import Scanner
from services.tenants import TenantInfo
from services.throttling import RateLimiter
from services.voice import VoiceService


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
    exchanges: ExchangeRegistry
    market: MarketDataService
    reports: ReportService
    scanner: Scanner
    catalogue: Catalogue
    controller: Controller
    consensus: ConsensusService
    voice: VoiceService
    payments_token: SecretStr | None  # Telegram Payments provider token for card invoices
    stripe_billing: NotRequired[StripeBilling]  # when Stripe is configured
    copy_relay: NotRequired[CopyRelay]  # copy trading: record, copy to followers, publish (set at start)
    # Per update, added by the middlewares: session (AsyncSession), user (UserProfile),
    # user_service (UserService), i18n (Translator), locale (str).
