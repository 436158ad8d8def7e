"""A trading stack on the exchange emulators for copy-trading tests and the fan-out bench: the exchange
registry as the bot builds it, trading services per session, users with paper or live accounts, and a relay
whose notifier and publisher record what they were given."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import ExchangeAccount, PaperBalance, Subscription, Tenant, User
from sandbox.exchanges import ExchangeEmulator, Market, start_all
from services.billing.entitlements import Entitlements
from services.billing.plans import Catalogue
from services.copytrading.follows import FollowService
from services.copytrading.leaders import LeaderService
from services.copytrading.mirror import CopyConfig, MirrorEngine
from services.copytrading.publishing import SignalCard
from services.copytrading.relay import CopyRelay
from services.copytrading.views import LeaderView
from services.credits.ledger import CreditLedger
from services.exchanges.registry import ExchangeConfig, ExchangeRegistry
from services.exchanges.types import EXCHANGES, Credentials
from services.trading.service import TradingConfig, TradingService
from services.users import UserProfile

_IDS = itertools.count(810_000_001)
CATALOGUE = Catalogue()


class RecordingNotifier:
    """A `Notifier` that keeps what it was asked to send: (telegram id, key, params)."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str, dict[str, Any]]] = []

    async def send(self, telegram_id: int, locale: str | None, key: str, **params: Any) -> bool:
        self.sent.append((telegram_id, key, params))
        return True

    def to(self, telegram_id: int) -> list[str]:
        return [key for chat, key, _ in self.sent if chat == telegram_id]


class RecordingPublisher:
    """A `Publisher` that keeps the cards it posted: (chat id, card key, action id); `delay` per post."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.posts: list[tuple[int, str, str]] = []

    async def publish(self, chat_id: int, card: SignalCard, locale: str | None) -> bool:
        await asyncio.sleep(self.delay)
        self.posts.append((chat_id, card.key, card.start_payload))
        return True


@dataclass
class CopyStack:
    factory: async_sessionmaker[AsyncSession]
    registry: ExchangeRegistry
    emulators: dict[str, ExchangeEmulator]
    market: Market
    config: TradingConfig
    tenant_id: int

    def trading(self, session: AsyncSession) -> TradingService:
        async def credentials(account: ExchangeAccount) -> Credentials:
            return Credentials(api_key=account.api_key_enc or "", secret=account.secret_enc or "")

        return TradingService(
            session,
            self.registry,
            self.config,
            credentials=credentials,
            private=self.registry.private,
            entitlements=Entitlements(session, CATALOGUE),
        )

    def mirror(self, **kwargs: object) -> MirrorEngine:
        return MirrorEngine(self.factory, self.trading, CopyConfig(**kwargs))  # type: ignore[arg-type]

    def relay(
        self,
        notifier: RecordingNotifier,
        publisher: RecordingPublisher | None = None,
        factory: async_sessionmaker[AsyncSession] | None = None,
    ) -> CopyRelay:
        """A relay (as one bot process builds it) on `factory`, by default the stack's own database pool."""
        factory = factory or self.factory
        mirror = MirrorEngine(factory, self.trading, CopyConfig())
        return CopyRelay(
            factory, mirror, lambda session: Entitlements(session, CATALOGUE), notifier, publisher
        )

    async def user(self, *, plan: str | None = None, credits: Decimal | None = None) -> UserProfile:
        async with self.factory() as session:
            telegram_id = next(_IDS)
            row = User(tenant_id=self.tenant_id, telegram_id=telegram_id, first_name=f"U{telegram_id}")
            session.add(row)
            await session.flush()
            if plan is not None:
                now = datetime.now(UTC)
                session.add(
                    Subscription(
                        user_id=row.id,
                        plan=plan,
                        status="active",
                        provider="stripe",
                        current_period_start=now - timedelta(days=1),
                        current_period_end=now + timedelta(days=29),
                    )
                )
            if credits is not None:
                await CreditLedger(session).grant(row.id, credits, "grant", f"grant:{row.id}")
            await session.commit()
            return UserProfile(
                id=row.id,
                tenant_id=row.tenant_id,
                telegram_id=telegram_id,
                username=None,
                first_name=row.first_name,
                language_code="en",
                locale="en",
                role="user",
                tier="free",
                created_at=row.created_at,
                last_seen_at=row.last_seen_at,
            )

    async def paper_account(self, user: UserProfile, usdt: Decimal | None = None) -> int:
        async with self.factory() as session:
            _, account = await self.trading(session).active_account(user)
            if usdt is not None:
                row = await session.get(PaperBalance, (account.id, "USDT"))
                assert row is not None
                row.free = usdt
            await session.commit()
            return account.id

    async def live_account(self, user: UserProfile, exchange: str, balances: dict[str, Decimal]) -> int:
        key, secret = f"key{user.id}", f"secret{user.id}"
        self.emulators[exchange].add_account(key, secret, balances=dict(balances))
        async with self.factory() as session:
            account = ExchangeAccount(
                user_id=user.id, exchange=exchange, is_paper=False, api_key_enc=key, secret_enc=secret
            )
            session.add(account)
            await session.commit()
            return account.id


@asynccontextmanager
async def copy_stack(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[CopyStack]:
    market = Market(seed=7)
    market.freeze()
    emulators = await start_all(market=market)
    registry = ExchangeRegistry(
        {
            exchange: ExchangeConfig(api_url=emulators[exchange].base_url, rate_limit=False, retry_attempts=1)
            for exchange in EXCHANGES
        }
    )
    async with factory() as session:
        tenant = Tenant(slug=f"copy{next(_IDS)}", name="Copy")
        session.add(tenant)
        await session.commit()
        tenant_id = tenant.id
    try:
        yield CopyStack(factory, registry, emulators, market, TradingConfig(), tenant_id)
    finally:
        await registry.close()
        for emulator in emulators.values():
            await emulator.stop()


async def make_leader(stack: CopyStack, name: str = "Alice") -> tuple[UserProfile, LeaderView]:
    user = await stack.user(plan="pro")
    async with stack.factory() as session:
        leader = await LeaderService(session, Entitlements(session, CATALOGUE)).become(user, name)
    return user, leader


async def follow(stack: CopyStack, user: UserProfile, leader_id: int, **kwargs: object) -> int:
    async with stack.factory() as session:
        service = FollowService(session, Entitlements(session, CATALOGUE), stack.trading(session))
        view = await service.follow(user, leader_id, **kwargs)  # type: ignore[arg-type]
        return view.id
