"""Start and stop a bot: migrations, tenant, commands, web server, inbox, webhook or polling."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
from dataclasses import dataclass, field
from datetime import timedelta

import stripe
import structlog
from aiogram.types import BotCommandScopeAllPrivateChats, BotCommandScopeDefault
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from pydantic import SecretStr

from bot import heap
from bot.copytrading import build_copy_queue, build_copy_relay
from bot.factory import Application, build_application, build_stripe_billing
from bot.notifier import TelegramNotifier
from bot.polling import Poller
from bot.sender import Sender
from bot.settings import Settings
from bot.stripe_webhook import stripe_webhook_route
from bot.web import WEBHOOK_PATH, create_web_app
from db import migrate
from handlers.commands import bot_commands
from scheduler.health import alert_admins
from scheduler.leader import scheduler_election
from scheduler.lock import LeaderElection, build_leader_lock
from scheduler.setup import build_scheduler
from services.billing.renewals import RenewalService
from services.copytrading.queue import FanOutQueue
from services.tenants import TenantService

log = structlog.get_logger(__name__)


@dataclass
class RunningBot:
    app: Application
    runner: web.AppRunner
    poller: Poller | None = None
    scheduler: AsyncIOScheduler | None = None
    election: LeaderElection | None = None
    sender: Sender | None = None
    copy_queue: FanOutQueue | None = None
    stripe_http: stripe.AIOHTTPClient | None = None
    port: int = 0
    _stopped: bool = field(default=False, init=False)

    @property
    def base_url(self) -> str:
        return f"http://{self.app.settings.http_host}:{self.port}"

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)  # no job runs or starts here any more
        if self.election is not None:
            await self.election.stop()  # then the lock goes to the next process
        if self.poller is not None:
            await self.poller.stop()
        await self.app.inbox.stop()
        if self.copy_queue is not None:  # what it does not finish is swept by the next process
            await self.copy_queue.stop(drain_timeout=10.0)
        if self.sender is not None:
            await self.sender.stop(drain_timeout=10.0)
        await self.runner.cleanup()
        if self.stripe_http is not None:
            await self.stripe_http.close_async()
        await self.app.close()


async def register_commands(app: Application) -> None:
    """The command menu in every language we speak; the default one in the default locale."""
    bot, i18n = app.bot, app.i18n
    default_t = i18n.translator(app.settings.default_locale)
    await bot.set_my_commands(bot_commands(default_t), scope=BotCommandScopeDefault())
    await bot.set_my_commands(bot_commands(default_t), scope=BotCommandScopeAllPrivateChats())
    for locale in i18n.locales:
        commands = bot_commands(i18n.translator(locale))
        await bot.set_my_commands(commands, scope=BotCommandScopeDefault(), language_code=locale)
        await bot.set_my_commands(commands, scope=BotCommandScopeAllPrivateChats(), language_code=locale)


async def start_bot(settings: Settings) -> RunningBot:
    """Everything up and serving; returns a handle whose `stop()` shuts it down gracefully."""
    if settings.webhook_mode and settings.webhook_secret is None:
        settings.webhook_secret = SecretStr(secrets.token_urlsafe(32))
    app = build_application(settings)
    sender: Sender | None = None
    election: LeaderElection | None = None
    copy_queue: FanOutQueue | None = None
    try:
        await migrate.upgrade(app.engine)
        me = await app.bot.get_me()
        async with app.session_factory() as session:
            tenant = await TenantService(session).ensure(
                slug=settings.tenant_slug,
                name=me.first_name,
                default_locale=settings.default_locale,
                bot_id=me.id,
            )
            await session.commit()
        app.set_tenant(tenant)
        await register_commands(app)
        # every message sent outside a request goes through one paced sender
        sender = Sender(app.bot, metrics=app.metrics)
        sender.start()
        notifier = TelegramNotifier(app.bot, app.i18n, sender, wait_for_delivery=False)
        web_app = create_web_app(
            inbox=app.inbox,
            health=app.health,
            metrics=app.metrics,
            webhook_secret=settings.webhook_secret.get_secret_value() if settings.webhook_secret else None,
        )
        stripe_parts = build_stripe_billing(
            settings, app.session_factory, app.services.catalogue, notifier, me.username or ""
        )
        if stripe_parts is not None:
            web_app.router.add_post("/stripe/webhook", stripe_webhook_route(stripe_parts[0]))
            app.dispatcher["stripe_billing"] = stripe_parts[0]
        copy_relay = build_copy_relay(
            settings=settings,
            session_factory=app.session_factory,
            services=app.services,
            notifier=notifier,
            bot=app.bot,
            i18n=app.i18n,
            sender=sender,
            bot_username=me.username or "",
        )
        app.dispatcher["copy_relay"] = copy_relay
        # leaders' actions are copied to their followers by these workers, off the update path
        copy_queue = build_copy_queue(copy_relay, workers=settings.copy_trading.fan_out_workers)
        copy_queue.start()
        runner = web.AppRunner(web_app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, settings.http_host, settings.http_port)
        await site.start()
        port = settings.http_port or _bound_port(runner)
        running = RunningBot(app=app, runner=runner, port=port, sender=sender, copy_queue=copy_queue)
        running.stripe_http = stripe_parts[1] if stripe_parts is not None else None
        app.inbox.start()
        await copy_queue.sweep(tenant.id, older_than=timedelta(0))  # fan-outs a previous run left unfinished
        running.scheduler = build_scheduler(
            session_factory=app.session_factory,
            trading_factory=app.services.trading,
            notifier=notifier,
            protections_interval=settings.trading.watch_interval_seconds,
            live_orders_interval=settings.trading.live_orders_interval_seconds,
            live_order_settle=settings.trading.live_order_settle_seconds,
            live_order_give_up=settings.trading.live_order_give_up_seconds,
            market=app.market,
            scanner=app.scanner,
            alerts_interval=settings.market.alerts_interval_seconds,
            scan_delay_seconds=settings.market.scan_delay_seconds,
            renewals=RenewalService(
                app.session_factory,
                app.services.catalogue,
                grace=timedelta(hours=settings.stripe_renewal_grace_hours),
                tenant_id=tenant.id,
            ),
            tenant_id=tenant.id,
            controller=app.controller,
            health_interval=settings.controller.check_interval_seconds,
            consensus=app.consensus,
            consensus_resolve_interval=settings.consensus.resolve_interval_seconds,
            copy_relay=copy_relay,
            copy_queue=copy_queue,
        )
        # of the processes sharing this database, only the leader runs the jobs
        election = running.election = scheduler_election(
            running.scheduler,
            build_leader_lock(
                settings.resolved_database_url,
                scope=f"{tenant.slug}:{me.id}",
                ttl=settings.scheduler.lock_ttl_seconds,
                backend=settings.scheduler.lock_backend,
                redis_url=settings.redis_url,
            ),
            retry_interval=settings.scheduler.lock_retry_seconds,
        )
        alert_admins(
            app.controller,
            notifier,
            settings.admin_ids,
            app.session_factory,
            active=lambda: election is not None and election.is_leader,  # the leader alone alerts
        )
        election.start()
        allowed = app.dispatcher.resolve_used_update_types()
        if settings.webhook_mode:
            assert settings.webhook_url and settings.webhook_secret
            url = settings.webhook_url.rstrip("/")
            if not url.endswith(WEBHOOK_PATH):
                url += WEBHOOK_PATH
            await app.bot.set_webhook(
                url, secret_token=settings.webhook_secret.get_secret_value(), allowed_updates=allowed
            )
            log.info("bot.started", mode="webhook", username=me.username, http_port=port)
        else:
            await app.bot.delete_webhook(drop_pending_updates=False)
            running.poller = Poller(app.bot, app.inbox, allowed)
            running.poller.start()
            log.info("bot.started", mode="polling", username=me.username, http_port=port)
        return running
    except BaseException:
        if election is not None:
            await election.stop()
        if copy_queue is not None:
            await copy_queue.stop(drain_timeout=0)
        if sender is not None:
            await sender.stop(drain_timeout=0)
        await app.close()
        raise


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return 0


async def wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def run(settings: Settings) -> None:
    running = await start_bot(settings)
    heap.settle()
    try:
        await wait_for_signal()
    finally:
        log.info("bot.stopping")
        await running.stop()
