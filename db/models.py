"""ORM models. Every schema change goes through an Alembic migration in db/migrations."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base
from db.types import BigIntPK, Money, UTCDateTime, utcnow


class Tenant(Base):
    """A business client: the default operator or a white-label bot of its own."""

    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    bot_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    default_locale: Mapped[str] = mapped_column(String(8), default="en")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("tenant_id", "telegram_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"), index=True)
    telegram_id: Mapped[int] = mapped_column(BigInteger)
    username: Mapped[str | None] = mapped_column(String(64))
    first_name: Mapped[str | None] = mapped_column(String(128))
    language_code: Mapped[str | None] = mapped_column(String(16))
    locale: Mapped[str | None] = mapped_column(String(8))
    role: Mapped[str] = mapped_column(String(16), default="user")
    tier: Mapped[str] = mapped_column(String(16), default="free")
    bot_blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InboxUpdate(Base):
    """Every Telegram update received, stored before it is acknowledged, processed once."""

    __tablename__ = "telegram_updates"
    __table_args__ = (
        UniqueConstraint("bot_id", "update_id"),
        Index("ix_telegram_updates_status_locked", "status", "locked_until"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    bot_id: Mapped[int] = mapped_column(BigInteger)
    update_id: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)


class AuditLog(Base):
    """Append-only trail of sensitive actions."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="SET NULL"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


# --------------------------------------------------------------------------------------------- trading

MONEY = Money()


class ExchangeAccount(Base):
    """A user's trading account: the paper account, or API keys of a live exchange (encrypted)."""

    __tablename__ = "exchange_accounts"
    __table_args__ = (Index("ix_exchange_accounts_user_id", "user_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    exchange: Mapped[str] = mapped_column(String(32))
    is_paper: Mapped[bool] = mapped_column(Boolean, default=False)
    api_key_enc: Mapped[str | None] = mapped_column(Text)
    secret_enc: Mapped[str | None] = mapped_column(Text)
    passphrase_enc: Mapped[str | None] = mapped_column(Text)
    key_hint: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PaperBalance(Base):
    __tablename__ = "paper_balances"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("exchange_accounts.id", ondelete="CASCADE"), primary_key=True
    )
    asset: Mapped[str] = mapped_column(String(16), primary_key=True)
    free: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    locked: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))


class TradingProfile(Base):
    """A user's trading state and risk limits."""

    __tablename__ = "trading_profiles"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    active_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("exchange_accounts.id", ondelete="SET NULL")
    )
    max_position_pct: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(25))
    max_open_positions: Mapped[int] = mapped_column(Integer, default=10)
    max_daily_loss_pct: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(5))
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pause_reason: Mapped[str | None] = mapped_column(String(32))


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("client_order_id"),
        Index("ix_orders_account_status", "account_id", "status"),
        Index("ix_orders_account_updated", "account_id", "updated_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("exchange_accounts.id", ondelete="CASCADE"))
    position_id: Mapped[int | None] = mapped_column(ForeignKey("positions.id", ondelete="SET NULL"))
    exchange: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    order_type: Mapped[str] = mapped_column(String(8))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    limit_price: Mapped[Decimal | None] = mapped_column(MONEY)
    client_order_id: Mapped[str] = mapped_column(String(40))
    exchange_order_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="new")
    filled: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    # how much of a live order is booked on its position (a resting order is booked part by part)
    booked: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0), server_default=text("0"))
    average_price: Mapped[Decimal | None] = mapped_column(MONEY)
    cost: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    fee: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    fee_asset: Mapped[str | None] = mapped_column(String(16))
    realized_pnl: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    reserved: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))  # funds locked by a resting order
    stop_loss: Mapped[Decimal | None] = mapped_column(MONEY)  # for the position a resting buy opens
    take_profit: Mapped[Decimal | None] = mapped_column(MONEY)
    reason: Mapped[str] = mapped_column(String(16), default="manual")
    error: Mapped[str | None] = mapped_column(String(255))
    trigger_price: Mapped[Decimal | None] = mapped_column(MONEY)  # a native stop order's trigger
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Position(Base):
    __tablename__ = "positions"
    __table_args__ = (Index("ix_positions_account_status", "account_id", "status"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("exchange_accounts.id", ondelete="CASCADE"))
    exchange: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(8), default="open")
    amount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    average_entry: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    cost_basis: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    fees: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    realized_pnl: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    stop_loss: Mapped[Decimal | None] = mapped_column(MONEY)
    take_profit: Mapped[Decimal | None] = mapped_column(MONEY)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # a live position's protective order on the exchange (services/trading/protections.py): its order row,
    # and how the stop-loss / take-profit is kept: "native", "watched", or None (not decided yet)
    stop_order_id: Mapped[int | None] = mapped_column(BigIntPK)
    protection: Mapped[str | None] = mapped_column(String(16))


class PendingAction(Base):
    """A confirmation card: the action runs once, only if confirmed before it expires."""

    __tablename__ = "pending_actions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(16))


# --------------------------------------------------------------------------------------------- billing
#
# Credits: `credit_accounts` holds each user's running balance and debt, `credit_entries` the append-only
# ledger behind it. Balance and debt are never both positive and never negative (CHECK constraints): a
# shortfall is debt, and any later credit settles the debt before it adds to the balance. Every entry's
# `amount` is the signed change of `balance - debt`, so the entries of a user always sum to that figure.
# The CHECKs cast to NUMERIC because SQLite stores Money as its decimal string.

CREDIT_ENTRY_KINDS = ("grant", "purchase", "consumption", "fee", "refund", "adjustment")
PURCHASE_KINDS = ("pack", "plan")
PURCHASE_PROVIDERS = ("telegram_stars", "telegram_fiat", "stripe")
PURCHASE_STATUSES = ("pending", "paid", "refunded", "failed")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class CreditAccount(Base):
    """A user's credit balance and debt, updated in the same transaction as the ledger entry."""

    __tablename__ = "credit_accounts"
    __table_args__ = (
        CheckConstraint("CAST(balance AS NUMERIC) >= 0", name="balance_not_negative"),
        CheckConstraint("CAST(debt AS NUMERIC) >= 0", name="debt_not_negative"),
        CheckConstraint("CAST(balance AS NUMERIC) = 0 OR CAST(debt AS NUMERIC) = 0", name="balance_or_debt"),
    )

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    balance: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    debt: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    version: Mapped[int] = mapped_column(Integer, default=0)  # bumped by every change (compare-and-set)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CreditEntry(Base):
    """One movement of credits. Rows are never updated (a database trigger refuses it)."""

    __tablename__ = "credit_entries"
    __table_args__ = (
        UniqueConstraint("idempotency_key", name="uq_credit_entries_idempotency_key"),
        UniqueConstraint("reversal_of", name="uq_credit_entries_reversal_of"),
        Index("ix_credit_entries_user_id_id", "user_id", "id"),
        CheckConstraint(_one_of("kind", CREDIT_ENTRY_KINDS), name="kind"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(MONEY)  # signed change of balance - debt
    balance_after: Mapped[Decimal] = mapped_column(MONEY)
    debt_after: Mapped[Decimal] = mapped_column(MONEY)
    idempotency_key: Mapped[str] = mapped_column(String(128))
    reference: Mapped[str | None] = mapped_column(String(64))  # e.g. "position:42", "purchase:7"
    reversal_of: Mapped[int | None] = mapped_column(ForeignKey("credit_entries.id"))
    note: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Purchase(Base):
    """A credit pack or a plan period bought through a payment provider: pending -> paid -> refunded."""

    __tablename__ = "purchases"
    __table_args__ = (
        UniqueConstraint("provider_charge_id", name="uq_purchases_provider_charge_id"),
        UniqueConstraint("provider_session_id", name="uq_purchases_provider_session_id"),
        UniqueConstraint("provider_payment_id", name="uq_purchases_provider_payment_id"),
        Index("ix_purchases_user_id_created_at", "user_id", "created_at"),
        CheckConstraint(_one_of("kind", PURCHASE_KINDS), name="kind"),
        CheckConstraint(_one_of("provider", PURCHASE_PROVIDERS), name="provider"),
        CheckConstraint(_one_of("status", PURCHASE_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(8))
    item_code: Mapped[str] = mapped_column(String(32))  # a pack code ("credits_100") or a plan code ("pro")
    amount: Mapped[Decimal] = mapped_column(MONEY)  # in the currency's major unit: dollars, Stars
    currency: Mapped[str] = mapped_column(String(8))  # "USD", "XTR" (Telegram Stars)
    credits: Mapped[Decimal | None] = mapped_column(MONEY)  # credits a pack grants, fixed at purchase time
    provider: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    provider_charge_id: Mapped[str | None] = mapped_column(String(255))
    provider_session_id: Mapped[str | None] = mapped_column(String(255))
    provider_payment_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Subscription(Base):
    """A plan subscription. The user's plan is that of an active (or trialing) one whose period has not
    ended; otherwise Free."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        UniqueConstraint("stripe_subscription_id", name="uq_subscriptions_stripe_subscription_id"),
        Index("ix_subscriptions_user_id_status", "user_id", "status"),
        Index("ix_subscriptions_stripe_customer_id", "stripe_customer_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    plan: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # active | trialing | past_due | canceled | expired
    provider: Mapped[str] = mapped_column(String(16))
    current_period_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    current_period_end: Mapped[datetime] = mapped_column(UTCDateTime)
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255))
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255))
    telegram_charge_id: Mapped[str | None] = mapped_column(String(255))  # the latest Telegram charge
    purchase_id: Mapped[int | None] = mapped_column(ForeignKey("purchases.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    canceled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PaymentEvent(Base):
    """A provider's event (webhook or update) taken in; the unique pair makes processing idempotent."""

    __tablename__ = "payment_events"
    __table_args__ = (
        UniqueConstraint("provider", "event_id", name="uq_payment_events_provider_event_id"),
        Index("ix_payment_events_purchase_id", "purchase_id"),
        CheckConstraint(_one_of("provider", PURCHASE_PROVIDERS), name="provider"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(64))
    purchase_id: Mapped[int | None] = mapped_column(ForeignKey("purchases.id", ondelete="SET NULL"))
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class UsageCounter(Base):
    """Metered use of a feature per user and UTC day (AI signals), counted up to the plan's quota."""

    __tablename__ = "usage_counters"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    feature: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


# --------------------------------------------------------------------------------------------- market


class PriceAlert(Base):
    """A price alert: fires once when the market crosses it (status active -> fired, or deleted)."""

    __tablename__ = "price_alerts"
    __table_args__ = (
        Index("ix_price_alerts_status", "status"),
        Index("ix_price_alerts_user_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    exchange: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(8))  # above | below | rise | fall
    threshold: Mapped[Decimal] = mapped_column(MONEY)  # a price, or a 24h change in percent
    reference_price: Mapped[Decimal | None] = mapped_column(MONEY)
    status: Mapped[str] = mapped_column(String(8), default="active")
    fired_price: Mapped[Decimal | None] = mapped_column(MONEY)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ScanSubscription(Base):
    __tablename__ = "scan_subscriptions"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    symbols: Mapped[list[str]] = mapped_column(JSON, default=list)  # empty: every scanned symbol
    timeframes: Mapped[list[str]] = mapped_column(JSON, default=list)  # empty: every scanned timeframe
    min_score: Mapped[int] = mapped_column(Integer, default=60)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ScanOpportunity(Base):
    """One scored symbol on one closed candle."""

    __tablename__ = "scan_opportunities"
    __table_args__ = (
        UniqueConstraint("exchange", "symbol", "timeframe", "candle_ts", name="uq_scan_opportunities_candle"),
        Index("ix_scan_opportunities_timeframe_candle", "timeframe", "candle_ts"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    exchange: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str] = mapped_column(String(32))
    timeframe: Mapped[str] = mapped_column(String(8))
    candle_ts: Mapped[int] = mapped_column(BigInteger)
    score: Mapped[int] = mapped_column(Integer)
    direction: Mapped[str] = mapped_column(String(8))
    price: Mapped[Decimal] = mapped_column(MONEY)
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ScanDelivery(Base):
    __tablename__ = "scan_deliveries"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    opportunity_id: Mapped[int] = mapped_column(
        ForeignKey("scan_opportunities.id", ondelete="CASCADE"), primary_key=True
    )
    delivered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# ------------------------------------------------------------------------------------------- consensus
#
# An AI consensus signal: one market snapshot put to several voters (LLMs through litellm and technical
# analysis rules), their votes weighted by each voter's track record. Every signal and every vote is kept;
# a job resolves a signal when its horizon ends and folds each valid vote's Brier score into the voter's
# record for the symbol class and horizon (`voter_scores`).

SIGNAL_ACTIONS = ("buy", "sell", "hold")
SIGNAL_OUTCOMES = ("up", "down", "flat", "unresolvable")
VOTER_KINDS = ("llm", "ta")


class ConsensusSignal(Base):
    __tablename__ = "consensus_signals"
    __table_args__ = (
        Index("ix_consensus_signals_due", "resolved_at", "resolve_at"),
        Index("ix_consensus_signals_user_id_created_at", "user_id", "created_at"),
        Index("ix_consensus_signals_created_at", "created_at"),
        CheckConstraint(_one_of("action", SIGNAL_ACTIONS), name="action"),
        CheckConstraint(f"outcome IS NULL OR {_one_of('outcome', SIGNAL_OUTCOMES)}", name="outcome"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    exchange: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str] = mapped_column(String(32))
    symbol_class: Mapped[str] = mapped_column(String(8))  # major | large | alt
    timeframe: Mapped[str] = mapped_column(String(8))
    horizon: Mapped[str] = mapped_column(String(8))  # "4h", "1d", ...
    horizon_minutes: Mapped[int] = mapped_column(Integer)
    candle_ts: Mapped[int] = mapped_column(BigInteger)  # open time of the last closed candle in the snapshot
    snapshot_hash: Mapped[str] = mapped_column(String(64))
    entry_price: Mapped[Decimal] = mapped_column(MONEY)
    action: Mapped[str] = mapped_column(String(8))
    probability: Mapped[float | None] = mapped_column(Float)  # weighted confidence of the agreeing votes
    probability_up: Mapped[float | None] = mapped_column(Float)  # weighted P(up) over the valid votes
    score: Mapped[float] = mapped_column(Float)  # weighted score, -1..1
    quorum_met: Mapped[bool] = mapped_column(Boolean)
    valid_votes: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(String(64))  # comma-separated reason codes
    total_cost: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))  # USD
    flat_band_pct: Mapped[float] = mapped_column(Float)  # a realised move within +-this % is "flat"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolve_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    realised_price: Mapped[Decimal | None] = mapped_column(MONEY)
    outcome: Mapped[str | None] = mapped_column(String(16))
    hit: Mapped[bool | None] = mapped_column(Boolean)
    brier: Mapped[float | None] = mapped_column(Float)


class ConsensusVote(Base):
    """One voter's answer to one signal's snapshot; an abstention is a row with valid = false."""

    __tablename__ = "consensus_votes"
    __table_args__ = (
        UniqueConstraint("signal_id", "voter", name="uq_consensus_votes_signal_id_voter"),
        Index("ix_consensus_votes_voter", "voter"),
        CheckConstraint(_one_of("kind", VOTER_KINDS), name="kind"),
        CheckConstraint(f"action IS NULL OR {_one_of('action', SIGNAL_ACTIONS)}", name="action"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    signal_id: Mapped[int] = mapped_column(ForeignKey("consensus_signals.id", ondelete="CASCADE"))
    voter: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))
    action: Mapped[str | None] = mapped_column(String(8))
    probability: Mapped[float | None] = mapped_column(Float)
    horizon: Mapped[str | None] = mapped_column(String(8))
    stop_loss: Mapped[Decimal | None] = mapped_column(MONEY)
    take_profit: Mapped[Decimal | None] = mapped_column(MONEY)
    rationale: Mapped[str | None] = mapped_column(String(255))
    valid: Mapped[bool] = mapped_column(Boolean)
    abstain_reason: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(String(255))
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    tokens_in: Mapped[int] = mapped_column(Integer, default=0)
    tokens_out: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))  # USD, 0 for a cache hit
    cache_hit: Mapped[bool] = mapped_column(Boolean, default=False)
    weight: Mapped[float] = mapped_column(Float)
    brier: Mapped[float | None] = mapped_column(Float)  # set when the signal resolves
    hit: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class VoterScore(Base):
    """A voter's resolved record for one symbol class and horizon: the sums its weight is derived from."""

    __tablename__ = "voter_scores"

    voter: Mapped[str] = mapped_column(String(64), primary_key=True)
    symbol_class: Mapped[str] = mapped_column(String(8), primary_key=True)
    horizon: Mapped[str] = mapped_column(String(8), primary_key=True)
    resolved: Mapped[int] = mapped_column(Integer, default=0)
    brier_sum: Mapped[float] = mapped_column(Float, default=0.0)
    hits: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# ------------------------------------------------------------------------------------------ copy trading
#
# Leaders publish to Telegram channels and are copied by followers. Every leader action (an entry, an exit, a
# stop-loss or take-profit change; from their own trades, a post in their channel or a consensus signal) is
# stored once, keyed by its source. Fan-out copies it to every active follow as one `copy_orders` row per
# (action, follow), with a deterministic client order id. `copy_positions` remembers what each follow
# copied per entry, so an exit sells the copied amount whatever the sizes were. `leader_revenue` is the
# append-only record of the platform fee on a follower's realised profit and the leader's share of it.

FOLLOW_MODES = ("paper", "live")
ALLOCATION_KINDS = ("fixed", "percent")
FOLLOW_STATUSES = ("active", "paused", "stopped")
CHANNEL_KINDS = ("channel", "group")
LEADER_ACTION_KINDS = ("entry", "exit", "sl", "tp")
LEADER_ACTION_SOURCES = ("trade", "post", "signal")
COPY_ORDER_STATUSES = ("queued", "done", "failed", "skipped")
COPY_POSITION_STATUSES = ("open", "closed")


class Leader(Base):
    __tablename__ = "leaders"
    __table_args__ = (UniqueConstraint("user_id", name="uq_leaders_user_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    display_name: Mapped[str] = mapped_column(String(64))
    publishes_trades: Mapped[bool] = mapped_column(Boolean, default=True)
    publishes_signals: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LeaderChannel(Base):
    """A Telegram channel or group a leader publishes to (and whose posts the bot reads)."""

    __tablename__ = "leader_channels"
    __table_args__ = (
        UniqueConstraint("chat_id", name="uq_leader_channels_chat_id"),
        Index("ix_leader_channels_leader_id", "leader_id"),
        CheckConstraint(_one_of("kind", CHANNEL_KINDS), name="kind"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    leader_id: Mapped[int] = mapped_column(ForeignKey("leaders.id", ondelete="CASCADE"))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    title: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(8))
    rights_ok: Mapped[bool] = mapped_column(Boolean, default=False)
    missing_rights: Mapped[str | None] = mapped_column(String(128))  # comma-separated, when not ok
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Follow(Base):
    """A follower copying a leader into one of their accounts. At most one follow per (follower, leader)
    is not stopped."""

    __tablename__ = "follows"
    __table_args__ = (
        Index(
            "uq_follows_follower_id_leader_id_open",
            "follower_id",
            "leader_id",
            unique=True,
            postgresql_where=text("status <> 'stopped'"),
            sqlite_where=text("status <> 'stopped'"),
        ),
        Index("ix_follows_leader_id_status", "leader_id", "status"),
        CheckConstraint(_one_of("mode", FOLLOW_MODES), name="mode"),
        CheckConstraint(_one_of("allocation_kind", ALLOCATION_KINDS), name="allocation_kind"),
        CheckConstraint(_one_of("status", FOLLOW_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    follower_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    leader_id: Mapped[int] = mapped_column(ForeignKey("leaders.id", ondelete="CASCADE"))
    mode: Mapped[str] = mapped_column(String(8))
    account_id: Mapped[int] = mapped_column(ForeignKey("exchange_accounts.id", ondelete="CASCADE"))
    allocation_kind: Mapped[str] = mapped_column(String(8))
    allocation_value: Mapped[Decimal] = mapped_column(MONEY)  # USDT per trade, or % of equity per trade
    max_per_trade: Mapped[Decimal | None] = mapped_column(MONEY)  # USDT
    stop_drawdown_pct: Mapped[Decimal | None] = mapped_column(MONEY)
    status: Mapped[str] = mapped_column(String(8), default="active")
    pause_reason: Mapped[str | None] = mapped_column(String(32))
    start_equity: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))  # account equity when followed
    realized_pnl: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))  # of copied exits
    equity_hwm: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))  # high-water mark of copy equity
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LeaderAction(Base):
    """One thing a leader did, stored once per source (`source_ref`), then copied to the followers."""

    __tablename__ = "leader_actions"
    __table_args__ = (
        UniqueConstraint("source_ref", name="uq_leader_actions_source_ref"),
        Index("ix_leader_actions_leader_id_created_at", "leader_id", "created_at"),
        CheckConstraint(_one_of("kind", LEADER_ACTION_KINDS), name="kind"),
        CheckConstraint(_one_of("source", LEADER_ACTION_SOURCES), name="source"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    leader_id: Mapped[int] = mapped_column(ForeignKey("leaders.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    price: Mapped[Decimal | None] = mapped_column(MONEY)
    amount: Mapped[Decimal | None] = mapped_column(MONEY)  # base, when the leader's own trade
    pct_equity: Mapped[Decimal | None] = mapped_column(MONEY)  # entries: size as % of the leader's equity
    close_pct: Mapped[Decimal | None] = mapped_column(MONEY)  # exits: % of the position closed
    stop_loss: Mapped[Decimal | None] = mapped_column(MONEY)
    targets: Mapped[list[str]] = mapped_column(JSON, default=list)  # decimal strings
    source: Mapped[str] = mapped_column(String(8))
    source_ref: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # the fan-out queue (services/copytrading/queue.py): a worker holds the action while its lease runs;
    # finished once `fanned_out_at` is set; its card is posted once (`published_at` is claimed first)
    fanned_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    fanout_owner: Mapped[str | None] = mapped_column(String(32))
    fanout_lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fanout_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CopyOrder(Base):
    """One leader action copied to one follow: queued, then done, failed (with why) or skipped."""

    __tablename__ = "copy_orders"
    __table_args__ = (
        UniqueConstraint("action_id", "follow_id", name="uq_copy_orders_action_id_follow_id"),
        UniqueConstraint("client_order_id", name="uq_copy_orders_client_order_id"),
        Index("ix_copy_orders_follow_id", "follow_id"),
        CheckConstraint(_one_of("status", COPY_ORDER_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    action_id: Mapped[int] = mapped_column(ForeignKey("leader_actions.id", ondelete="CASCADE"))
    follow_id: Mapped[int] = mapped_column(ForeignKey("follows.id", ondelete="CASCADE"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(8), default="queued")
    reason: Mapped[str | None] = mapped_column(String(64))
    client_order_id: Mapped[str] = mapped_column(String(40))
    realized_pnl: Mapped[Decimal | None] = mapped_column(MONEY)  # exits
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CopyPosition(Base):
    """What a follow holds from one copied entry; exits sell from these, oldest first."""

    __tablename__ = "copy_positions"
    __table_args__ = (
        Index("ix_copy_positions_follow_id_symbol_status", "follow_id", "symbol", "status"),
        CheckConstraint(_one_of("status", COPY_POSITION_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    follow_id: Mapped[int] = mapped_column(ForeignKey("follows.id", ondelete="CASCADE"))
    symbol: Mapped[str] = mapped_column(String(32))
    position_id: Mapped[int | None] = mapped_column(ForeignKey("positions.id", ondelete="SET NULL"))
    entry_action_id: Mapped[int] = mapped_column(ForeignKey("leader_actions.id", ondelete="CASCADE"))
    amount: Mapped[Decimal] = mapped_column(MONEY)  # base still held from this copy
    cost: Mapped[Decimal] = mapped_column(MONEY)  # quote paid for what is still held, fees included
    status: Mapped[str] = mapped_column(String(8), default="open")
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LeaderRevenue(Base):
    """The platform fee on a follower's realised profit from one copied exit and the leader's share of it
    (credits: 1 credit per USD, as the credit ledger counts profit). Rows are never updated."""

    __tablename__ = "leader_revenue"
    __table_args__ = (
        UniqueConstraint("idempotency_key", name="uq_leader_revenue_idempotency_key"),
        Index("ix_leader_revenue_leader_id_created_at", "leader_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    leader_id: Mapped[int] = mapped_column(ForeignKey("leaders.id", ondelete="CASCADE"))
    follower_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    copy_order_id: Mapped[int | None] = mapped_column(ForeignKey("copy_orders.id", ondelete="SET NULL"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"))
    profit: Mapped[Decimal] = mapped_column(MONEY)
    fee: Mapped[Decimal] = mapped_column(MONEY)
    leader_share: Mapped[Decimal] = mapped_column(MONEY)
    idempotency_key: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --------------------------------------------------------------------------------------------- auto-trade


class AutoTradeSetting(Base):
    """A user's opt-in: consensus signals on these symbols are executed when confident enough."""

    __tablename__ = "autotrade_settings"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    symbols: Mapped[list[str]] = mapped_column(JSON, default=list)
    timeframe: Mapped[str] = mapped_column(String(8), default="1h")
    min_confidence: Mapped[int] = mapped_column(Integer, default=70)  # percent
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
