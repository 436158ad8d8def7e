"""Builds every object of a running bot. Nothing global: `build_application` returns them all."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import stripe
from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.fsm.storage.base import BaseStorage
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.fsm.storage.redis import RedisStorage
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot import aiogram_tuning
from bot.health import HealthChecker, bind_metrics, build_controller
from bot.inbox import InboxProcessor
from bot.logging import register_secret
from bot.metrics import Metrics
from bot.middlewares import DbSessionMiddleware, I18nMiddleware, ThrottlingMiddleware, UserMiddleware
from bot.middlewares.services import ServicesMiddleware
from bot.settings import Settings
from bot.telegram_session import JsonBodySession
from db.engine import create_engine, create_session_factory
from db.models import ExchangeAccount
from handlers import build_root_router
from services.billing.entitlements import Entitlements
from services.billing.plans import Catalogue
from services.billing.stripe_checkout import StripeBilling, telegram_return_urls
from services.consensus.cache import MemoryAnswerCache, RedisAnswerCache
from services.consensus.config import LLMVoterConfig, resolve_llm_voters
from services.consensus.health import LLMProbe
from services.consensus.service import ConsensusService
from services.controller import Controller
from services.controller.components import llm_component
from services.crypto import SecretBox
from services.exchanges.registry import ExchangeConfig, ExchangeRegistry
from services.exchanges.types import EXCHANGES, Credentials
from services.i18n import I18n
from services.market.data import MarketDataService, MemoryCandleCache, RedisCandleCache
from services.market.report import ReportService
from services.market.scanner import Scanner, ScannerConfig
from services.notify import Notifier
from services.risk.limits import RiskLimits
from services.tenants import TenantInfo
from services.throttling import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from services.trading.accounts import AccountService
from services.trading.service import TradingConfig, TradingService
from services.voice import VoiceService, build_voice_service


@dataclass(frozen=True)
class ServiceFactory:
    """Builds the per-session services (for an update, or for a scheduled job)."""

    exchanges: ExchangeRegistry
    secret_box: SecretBox
    config: TradingConfig
    catalogue: Catalogue
    metrics: Metrics | None = None

    def _count_fill(self, mode: str, side: str, order_type: str) -> None:
        if self.metrics is not None:
            self.metrics.orders.labels(mode, side, "filled").inc()

    def entitlements(self, session: AsyncSession) -> Entitlements:
        return Entitlements(session, self.catalogue)

    def accounts(self, session: AsyncSession) -> AccountService:
        return AccountService(
            session,
            self.exchanges,
            self.secret_box,
            config=self.config,
            redact=register_secret,
            entitlements=self.entitlements(session),
        )

    def trading(self, session: AsyncSession) -> TradingService:
        async def credentials(account: ExchangeAccount) -> Credentials:
            # the account service is built only when a live order needs the key, not on every update
            return await self.accounts(session).credentials(account)

        return TradingService(
            session,
            self.exchanges,
            self.config,
            credentials=credentials,
            private=self.exchanges.private,
            entitlements=self.entitlements(session),
            on_fill=self._count_fill,
        )


@dataclass
class Application:
    settings: Settings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    redis: Redis | None
    bot: Bot
    dispatcher: Dispatcher
    i18n: I18n
    metrics: Metrics
    inbox: InboxProcessor
    health: HealthChecker
    secret_box: SecretBox
    exchanges: ExchangeRegistry
    services: ServiceFactory
    market: MarketDataService
    reports: ReportService
    scanner: Scanner
    controller: Controller
    consensus: ConsensusService
    voice: VoiceService

    def set_tenant(self, tenant: TenantInfo) -> None:
        self.dispatcher["tenant"] = tenant

    async def close(self) -> None:
        self.controller.close()
        await self.exchanges.close()
        await self.bot.session.close()
        if self.redis is not None:
            await self.redis.aclose()
        await self.dispatcher.storage.close()
        await self.engine.dispose()


def build_voice(settings: Settings) -> VoiceService:
    """The voice service of the settings' engine and model (it loads the model on first use)."""
    v = settings.voice
    return build_voice_service(
        v.engine,
        v.model,
        workers=v.workers,
        cpu_threads=v.cpu_threads,
        beam_size=v.beam_size,
        vad=v.vad,
        max_seconds=v.max_seconds,
        max_bytes=v.max_bytes,
        download_root=v.download_root,
        local_files_only=v.local_files_only,
    )


def build_bot(settings: Settings) -> Bot:
    if settings.bot_token is None:
        raise ValueError("BOT_TOKEN is not set")
    token = settings.bot_token.get_secret_value()
    register_secret(token)
    aiogram_tuning.kept()
    session = JsonBodySession(api=TelegramAPIServer.from_base(settings.telegram_api_server))
    return Bot(token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))


def build_rate_limiter(settings: Settings, redis: Redis | None) -> RateLimiter:
    if redis is not None:
        return RedisRateLimiter(redis, settings.throttle.rate, settings.throttle.burst)
    return MemoryRateLimiter(settings.throttle.rate, settings.throttle.burst)


def build_exchanges(settings: Settings) -> ExchangeRegistry:
    group = settings.exchange_settings()
    return ExchangeRegistry(
        {
            exchange_id: ExchangeConfig(
                api_url=group.api_url(exchange_id),
                timeout_ms=group.timeout_ms,
                breaker_failures=group.breaker_failures,
                breaker_reset_seconds=group.breaker_reset_seconds,
            )
            for exchange_id in EXCHANGES
        }
    )


def trading_config(settings: Settings) -> TradingConfig:
    trading = settings.trading
    return TradingConfig(
        default_exchange=settings.default_exchange,
        paper_starting_balance=trading.paper_starting_balance,
        paper_quote=trading.paper_quote,
        confirm_ttl=timedelta(seconds=trading.confirm_ttl_seconds),
        max_slippage_pct=trading.max_slippage_pct,
        limits=RiskLimits(
            max_position_pct=trading.max_position_pct,
            max_open_positions=trading.max_open_positions,
            max_daily_loss_pct=trading.max_daily_loss_pct,
        ),
    )


def build_dispatcher(
    *,
    settings: Settings,
    i18n: I18n,
    session_factory: async_sessionmaker[AsyncSession],
    rate_limiter: RateLimiter,
    metrics: Metrics,
    redis: Redis | None,
    storage: BaseStorage,
    exchanges: ExchangeRegistry,
    services: ServiceFactory,
    market: MarketDataService,
    reports: ReportService,
    scanner: Scanner,
    controller: Controller,
    consensus: ConsensusService,
    voice: VoiceService,
) -> Dispatcher:
    admin_ids = frozenset(settings.admin_ids)
    dispatcher = Dispatcher(
        storage=storage,
        settings=settings,
        i18n_hub=i18n,
        session_factory=session_factory,
        rate_limiter=rate_limiter,
        metrics=metrics,
        redis=redis,
        admin_ids=admin_ids,
        exchanges=exchanges,
        market=market,
        reports=reports,
        scanner=scanner,
        catalogue=services.catalogue,
        controller=controller,
        consensus=consensus,
        voice=voice,
        payments_token=settings.payments_provider_token,
    )
    # Outer update middlewares run in this order, after aiogram's own (errors, user context, FSM).
    dispatcher.update.outer_middleware(DbSessionMiddleware(session_factory))
    dispatcher.update.outer_middleware(ThrottlingMiddleware(rate_limiter, metrics))
    dispatcher.update.outer_middleware(UserMiddleware(admin_ids))
    dispatcher.update.outer_middleware(I18nMiddleware())
    dispatcher.update.outer_middleware(
        ServicesMiddleware(trading=services.trading, accounts=services.accounts)
    )
    dispatcher.include_router(build_root_router())
    return dispatcher


def build_application(settings: Settings) -> Application:
    settings.ensure_data_dir()
    master_key = settings.resolved_master_key()
    register_secret(master_key.get_secret_value())
    if settings.webhook_secret is not None:
        register_secret(settings.webhook_secret.get_secret_value())
    engine = create_engine(settings.resolved_database_url)
    session_factory = create_session_factory(engine)
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    metrics = Metrics()
    i18n = I18n(default_locale=settings.default_locale)
    bot = build_bot(settings)
    storage: BaseStorage = RedisStorage(redis) if redis is not None else MemoryStorage()
    exchanges = build_exchanges(settings)
    controller = build_controller(
        engine=engine,
        bot=bot,
        redis=redis,
        exchanges=exchanges,
        check_timeout=settings.controller.check_timeout_seconds,
        down_after=settings.controller.down_after,
        up_after=settings.controller.up_after,
        recovery_base=settings.controller.recovery_base_seconds,
        recovery_max=settings.controller.recovery_max_seconds,
    )
    bind_metrics(controller, metrics, exchanges)
    secret_box = SecretBox(master_key.get_secret_value())
    catalogue = Catalogue(settings.billing)
    services = ServiceFactory(exchanges, secret_box, trading_config(settings), catalogue, metrics)
    market = MarketDataService(
        exchanges,
        RedisCandleCache(redis) if redis is not None else MemoryCandleCache(),
        default_exchange=settings.default_exchange,
        quote=settings.trading.paper_quote,
    )
    reports = ReportService(market)
    consensus = build_consensus(settings, session_factory, market, redis)
    for voter in llm_voters(settings):
        controller.register(llm_component(voter.voter_name, LLMProbe(voter)))
    voice = build_voice(settings)
    scanner = Scanner(
        market,
        ScannerConfig(
            timeframes=settings.market.timeframes,
            universe_size=settings.market.scan_universe_size,
            symbols=settings.market.symbols,
            min_score=settings.market.scan_min_score,
        ),
    )
    dispatcher = build_dispatcher(
        settings=settings,
        i18n=i18n,
        session_factory=session_factory,
        rate_limiter=build_rate_limiter(settings, redis),
        metrics=metrics,
        redis=redis,
        storage=storage,
        exchanges=exchanges,
        services=services,
        market=market,
        reports=reports,
        scanner=scanner,
        controller=controller,
        consensus=consensus,
        voice=voice,
    )
    inbox = InboxProcessor(
        bot=bot,
        dispatcher=dispatcher,
        session_factory=session_factory,
        settings=settings.inbox,
        metrics=metrics,
    )
    health = HealthChecker(
        engine=engine,
        bot=bot,
        metrics=metrics,
        redis=redis,
        mode="webhook" if settings.webhook_mode else "polling",
        controller=controller,
    )
    return Application(
        settings=settings,
        engine=engine,
        session_factory=session_factory,
        redis=redis,
        bot=bot,
        dispatcher=dispatcher,
        i18n=i18n,
        metrics=metrics,
        inbox=inbox,
        health=health,
        secret_box=secret_box,
        exchanges=exchanges,
        services=services,
        market=market,
        reports=reports,
        scanner=scanner,
        controller=controller,
        consensus=consensus,
        voice=voice,
    )


def build_stripe_billing(
    settings: Settings,
    session_factory: async_sessionmaker[AsyncSession],
    catalogue: Catalogue,
    notifier: Notifier,
    bot_username: str,
) -> tuple[StripeBilling, stripe.AIOHTTPClient] | None:
    """Stripe Checkout and its webhook, when both Stripe keys are set."""
    if settings.stripe_secret_key is None or settings.stripe_webhook_secret is None:
        return None
    api_key = settings.stripe_secret_key.get_secret_value()
    webhook_secret = settings.stripe_webhook_secret.get_secret_value()
    register_secret(api_key)
    register_secret(webhook_secret)
    http_client = stripe.AIOHTTPClient()

    def client() -> stripe.StripeClient:
        return stripe.StripeClient(
            api_key, base_addresses={"api": settings.stripe_api_base}, http_client=http_client
        )

    billing = StripeBilling(
        client_factory=client,
        session_factory=session_factory,
        catalogue=catalogue,
        webhook_secret=webhook_secret,
        return_urls=telegram_return_urls(bot_username),
        notifier=notifier,
        idempotency_prefix=settings.tenant_slug,
    )
    return billing, http_client


def llm_voters(settings: Settings) -> list[LLMVoterConfig]:
    return resolve_llm_voters(
        settings.llm_voters,
        openai_api_key=settings.openai_api_key,
        anthropic_api_key=settings.anthropic_api_key,
        gemini_api_key=settings.gemini_api_key,
    )


def build_consensus(
    settings: Settings,
    session_factory: async_sessionmaker[AsyncSession],
    market: MarketDataService,
    redis: Redis | None,
) -> ConsensusService:
    """The AI consensus: the configured LLM voters (or one per provider key) plus the TA voters."""
    voters = llm_voters(settings)
    for voter in voters:
        if voter.api_key is not None:
            register_secret(voter.api_key.get_secret_value())
    cache = RedisAnswerCache(redis) if redis is not None else MemoryAnswerCache()
    return ConsensusService.from_settings(session_factory, market, settings.consensus, voters, cache=cache)
