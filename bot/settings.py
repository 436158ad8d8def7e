"""Application settings, read from the environment and `.env` (see `.env.example`)."""

from __future__ import annotations

import os
import secrets
import stat
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from services.billing.plans import BillingSettings
from services.consensus.config import ConsensusSettings, LLMVoterConfig, parse_llm_voters

PUBLIC_TELEGRAM_API = "https://api.telegram.org"
SUPPORTED_LOCALES = ("en", "ru", "es")


class ThrottleSettings(BaseModel):
    """Per-user token bucket: `rate` updates per second, bursts of `burst`; rate 0 disables it."""

    rate: float = 3.0
    burst: int = 8


class InboxSettings(BaseModel):
    lease_seconds: float = 60.0
    sweep_interval: float = 2.0
    max_attempts: int = 3
    concurrency: int = 64


class ExchangeSettings(BaseModel):
    """Where each exchange's API lives (None: the real exchange) and how patient we are with it."""

    binance_api_url: str | None = None
    kraken_api_url: str | None = None
    kucoin_api_url: str | None = None
    timeout_ms: int = 10_000
    breaker_failures: int = 5
    breaker_reset_seconds: float = 30.0

    def api_url(self, exchange_id: str) -> str | None:
        value = getattr(self, f"{exchange_id}_api_url", None)
        return str(value) if value else None


class TradingSettings(BaseModel):
    paper_starting_balance: Decimal = Decimal(10_000)
    paper_quote: str = "USDT"
    confirm_ttl_seconds: int = 60
    max_slippage_pct: Decimal = Decimal(2)
    max_position_pct: Decimal = Decimal(25)
    max_open_positions: int = 10
    max_daily_loss_pct: Decimal = Decimal(5)
    watch_interval_seconds: float = 5.0
    live_orders_interval_seconds: float = 10.0
    live_order_settle_seconds: float = 20.0
    live_order_give_up_seconds: float = 600.0


class MarketSettings(BaseModel):
    alerts_interval_seconds: float = 5.0
    scan_timeframes: str = "1h,4h"  # comma separated; the scanner runs as each of them closes
    scan_universe_size: int = 30
    scan_symbols: str = ""  # comma separated; empty: the top pairs by 24h volume
    scan_min_score: int = 60
    scan_delay_seconds: int = 5  # after a candle closes, so the exchange has it

    @property
    def timeframes(self) -> tuple[str, ...]:
        return tuple(t.strip().lower() for t in self.scan_timeframes.split(",") if t.strip())

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(s.strip() for s in self.scan_symbols.split(",") if s.strip())


class SchedulerSettings(BaseModel):
    """Leader lock: of the processes sharing one database, one runs the scheduled jobs."""

    lock_backend: Literal["auto", "postgres", "redis", "file", "process"] = "auto"
    lock_ttl_seconds: float = Field(default=10.0, gt=0)
    lock_retry_seconds: float = Field(default=2.0, gt=0)


class ControllerSettings(BaseModel):
    """The master controller: health checks of every component, /status, admin alerts."""

    check_interval_seconds: float = 30.0
    check_timeout_seconds: float = 10.0
    down_after: int = 2
    up_after: int = 2
    recovery_base_seconds: float = 5.0
    recovery_max_seconds: float = 300.0


class VoiceSettings(BaseModel):
    """Voice messages, transcribed locally (the `voice` extra)."""

    engine: Literal["faster-whisper", "openai-whisper", "none"] = "faster-whisper"
    model: str | None = None  # a model name or a local directory/file; empty: the bundled tiny.en
    max_seconds: float = Field(default=60.0, gt=0)
    max_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    workers: int = Field(default=1, ge=1)
    cpu_threads: int = Field(default=0, ge=0)
    beam_size: int = Field(default=1, ge=1)
    vad: bool = False
    download_root: str | None = None
    local_files_only: bool = False


class CopySettings(BaseModel):
    """Copy trading: the platform fee on followers' copied live profit, the fan-out's pace, late copies."""

    fee_rate: Decimal = Field(default=Decimal("0.30"), ge=0, le=1)  # of a live copy's realised profit
    leader_share: Decimal = Field(default=Decimal("0.50"), ge=0, le=1)  # of that fee, credited to the leader
    per_exchange_concurrency: int = Field(default=8, ge=1)  # live copies in flight per exchange
    paper_concurrency: int = Field(default=16, ge=1)  # paper copies in flight
    fan_out_workers: int = Field(default=4, ge=1)  # leader actions carried out at once
    open_trade_slippage_pct: Decimal = Field(default=Decimal(2), ge=0)  # a late copy's price guard
    open_trade_offer_seconds: int = Field(default=300, gt=0)  # how long a "Copy now" button stays valid


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_nested_delimiter="__",
        extra="ignore",
    )

    # Telegram
    bot_token: SecretStr | None = None
    telegram_api_server: str = PUBLIC_TELEGRAM_API
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None

    # HTTP server (webhook, /healthz, /metrics)
    http_host: str = "127.0.0.1"
    http_port: int = 8000

    # Storage
    data_dir: Path = Path("data")
    database_url: str | None = None
    redis_url: str | None = None
    master_key: SecretStr | None = None

    # People and language
    admin_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    default_locale: Literal["en", "ru", "es"] = "en"
    tenant_slug: str = "default"

    # Sandbox (the embedded default when no BOT_TOKEN is set)
    sandbox_host: str = "127.0.0.1"
    sandbox_port: int = 8080

    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"
    environment: Literal["development", "production"] = "development"

    # Exchanges: BINANCE_API_URL, KRAKEN_API_URL, KUCOIN_API_URL override the API base (testnets,
    # proxies, the local emulators); DEFAULT_EXCHANGE is the market-data source for paper trading.
    binance_api_url: str | None = None
    kraken_api_url: str | None = None
    kucoin_api_url: str | None = None
    default_exchange: Literal["binance", "kraken", "kucoin"] = "binance"
    exchange: ExchangeSettings = Field(default_factory=ExchangeSettings)
    trading: TradingSettings = Field(default_factory=TradingSettings)
    market: MarketSettings = Field(default_factory=MarketSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    controller: ControllerSettings = Field(default_factory=ControllerSettings)
    voice: VoiceSettings = Field(default_factory=VoiceSettings)

    # AI consensus: LLM voters (JSON list) and provider keys for the default voters
    llm_voters: Annotated[list[LLMVoterConfig], NoDecode] = Field(default_factory=list)
    openai_api_key: SecretStr | None = None
    anthropic_api_key: SecretStr | None = None
    gemini_api_key: SecretStr | None = None
    consensus: ConsensusSettings = Field(default_factory=ConsensusSettings)

    @field_validator("llm_voters", mode="before")
    @classmethod
    def _parse_llm_voters(cls, value: object) -> object:
        return parse_llm_voters(value) if isinstance(value, str) else value

    billing: BillingSettings = Field(default_factory=BillingSettings)
    # Telegram Payments provider token for card (fiat) invoices; Stars need none.
    payments_provider_token: SecretStr | None = None
    # Stripe (Checkout for packs and plans; POST /stripe/webhook)
    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str = "https://api.stripe.com"  # the local Stripe API in tests and the sandbox
    stripe_renewal_grace_hours: int = 72

    copy_trading: CopySettings = Field(default_factory=CopySettings)

    throttle: ThrottleSettings = Field(default_factory=ThrottleSettings)
    inbox: InboxSettings = Field(default_factory=InboxSettings)

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _parse_admin_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return [int(part) for part in value.replace(";", ",").split(",") if part.strip()]
        if isinstance(value, int):
            return [value]
        return value

    @field_validator("telegram_api_server")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    def exchange_settings(self) -> ExchangeSettings:
        """The exchange group with the top-level *_API_URL variables applied."""
        updates = {
            f"{name}_api_url": getattr(self, f"{name}_api_url")
            for name in ("binance", "kraken", "kucoin")
            if getattr(self, f"{name}_api_url")
        }
        return self.exchange.model_copy(update=updates)

    @property
    def webhook_mode(self) -> bool:
        return bool(self.webhook_url)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'cryptouniverse.db').as_posix()}"

    def ensure_data_dir(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return self.data_dir

    def resolved_master_key(self) -> SecretStr:
        """MASTER_KEY, or the key stored in `data/master.key`, generated (0600) on first use."""
        if self.master_key is not None:
            return self.master_key
        path = self.ensure_data_dir() / "master.key"
        if not path.exists():
            key = secrets.token_urlsafe(32)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
            with os.fdopen(fd, "w") as handle:
                handle.write(key + "\n")
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
        self.master_key = SecretStr(path.read_text().strip())
        return self.master_key


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
