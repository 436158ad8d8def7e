"""Live exchange accounts: connect API keys (checked with the exchange, stored encrypted), list, switch with a
confirmation, remove, decrypt for live trading, and re-encrypt everything under a new master key.

Secrets never leave this module in a return value, an error or an audit row: they are validated, handed to
the exchange client, encrypted with the SecretBox under a context naming the user, the exchange and the field
(so a ciphertext can't be moved to another row or field) and reported to the log scrubber."""

from __future__ import annotations

import logging
import secrets as token_source
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ExchangeAccount, PendingAction, TradingProfile
from db.repositories import AuditRepository, InboxRepository
from db.repositories.trading import TradingRepository
from db.types import utcnow
from services.billing.entitlements import Entitlements
from services.crypto import DecryptionError, SecretBox
from services.errors import AppError, NotFoundError, ValidationError
from services.exchanges.errors import ExchangeAuthError, ExchangeError, ExchangePermissionError
from services.exchanges.types import EXCHANGES, Balance, Credentials, ExchangeClient
from services.trading.service import PAPER, TradingConfig, TradingService
from services.users import UserProfile

log = logging.getLogger(__name__)

SWITCH_KIND = "switch_account"
FIELDS = ("api_key", "secret", "passphrase")
NEEDS_PASSPHRASE = frozenset({"kucoin"})
STABLES = frozenset({"USDT", "USDC", "USD", "BUSD", "FDUSD", "DAI", "TUSD"})
_LIMITS = {"api_key": (8, 256), "secret": (8, 256), "passphrase": (1, 128)}
_ROTATION_BATCH = 200
REDACTED = "[redacted]"
_MESSAGE_KINDS = ("message", "edited_message")
ZERO = Decimal(0)


# ------------------------------------------------------------------------------------------------- errors


class CredentialFormatError(ValidationError):
    """The pasted value can't be an API key, secret or passphrase (``field`` names which one)."""

    message_key = "accounts.errors.format"


class UnsupportedExchange(ValidationError):
    message_key = "accounts.errors.unsupported_exchange"


class PassphraseRequired(ValidationError):
    message_key = "accounts.errors.passphrase_required"


class InvalidApiKey(ValidationError):
    """The exchange rejected the key, the secret or the passphrase."""

    message_key = "accounts.errors.auth_failed"


class KeyNotPermitted(ValidationError):
    """The key is valid but may not read the balance (permissions, IP whitelist)."""

    message_key = "accounts.errors.permission_denied"


class WithdrawalsEnabled(ValidationError):
    """The key may withdraw: refused, the user is asked for a key without that permission."""

    message_key = "accounts.errors.withdrawals_enabled"


class AccountNotFound(NotFoundError):
    message_key = "accounts.errors.not_found"


class PaperNotRemovable(ValidationError):
    message_key = "accounts.errors.paper_not_removable"


class SwitchExpired(ValidationError):
    message_key = "accounts.errors.switch_expired"


class CredentialsUnreadable(AppError):
    """A stored secret can't be decrypted (e.g. the master key changed without a rotation)."""

    message_key = "accounts.errors.credentials_unreadable"


# ------------------------------------------------------------------------------------------------- values


class Exchanges(Protocol):
    """The exchange registry: public market data and per-account private clients."""

    def public(self, exchange_id: str) -> ExchangeClient: ...

    def private(self, exchange_id: str, credentials: Credentials) -> ExchangeClient: ...


@dataclass(frozen=True, slots=True)
class AccountView:
    id: int
    exchange: str  # "paper" or the exchange id
    is_paper: bool
    key_hint: str | None
    active: bool
    created_at: datetime

    @property
    def mode(self) -> str:
        return PAPER if self.is_paper else "live"


@dataclass(frozen=True, slots=True)
class AssetValue:
    asset: str
    total: Decimal
    value: Decimal | None  # in the quote asset; None when no price was found


@dataclass(frozen=True, slots=True)
class Connected:
    account: AccountView
    balances: tuple[AssetValue, ...]  # largest value first
    total_value: Decimal  # of the priced assets, in `quote`
    quote: str
    replaced: int  # accounts of the same exchange removed by this connection


@dataclass(frozen=True, slots=True)
class SwitchRequest:
    account: AccountView
    token: str | None  # None: switched at once (paper, or already active)
    expires_at: datetime | None
    ttl_seconds: int

    @property
    def needs_confirmation(self) -> bool:
        return self.token is not None


@dataclass(frozen=True, slots=True)
class RotationReport:
    accounts: int  # rows with stored secrets looked at
    rotated: int  # ciphertexts re-encrypted
    failed: int  # rows whose secrets no configured key can open (left unchanged)


# ------------------------------------------------------------------------------------------------- helpers


def context(user_id: int, exchange: str, field: str) -> str:
    """Associated data of a stored secret: a ciphertext only opens in its own row and field."""
    return f"user:{user_id}|exchange:{exchange}|field:{field}"


def _draft_context(user_id: int, field: str) -> str:
    return f"draft:user:{user_id}|field:{field}"


def key_hint(api_key: str) -> str:
    return "…" + api_key[-4:]


def check_field(field: str, value: str | None) -> str:
    """The value without surrounding whitespace, or a :class:`CredentialFormatError`."""
    text = (value or "").strip()
    low, high = _LIMITS[field]
    if not text:
        raise CredentialFormatError("accounts.errors.empty", field=field)
    if any(ch.isspace() for ch in text):
        raise CredentialFormatError("accounts.errors.spaces", field=field)
    if not all(33 <= ord(ch) <= 126 for ch in text):
        raise CredentialFormatError("accounts.errors.unprintable", field=field)
    if len(text) < low:
        raise CredentialFormatError("accounts.errors.too_short", field=field, minimum=low)
    if len(text) > high:
        raise CredentialFormatError("accounts.errors.too_long", field=field, maximum=high)
    return text


def check_exchange(exchange: str) -> str:
    if exchange not in EXCHANGES:
        raise UnsupportedExchange(exchange=exchange)
    return exchange


def _view(account: ExchangeAccount, active_id: int | None) -> AccountView:
    return AccountView(
        id=account.id,
        exchange=account.exchange,
        is_paper=account.is_paper,
        key_hint=account.key_hint,
        active=account.id == active_id,
        created_at=account.created_at,
    )


# ------------------------------------------------------------------------------------------------- service


class AccountService:
    def __init__(
        self,
        session: AsyncSession,
        exchanges: Exchanges,
        secret_box: SecretBox,
        *,
        config: TradingConfig | None = None,
        clock: Callable[[], datetime] = utcnow,
        redact: Callable[[str], None] | None = None,
        entitlements: Entitlements | None = None,
    ) -> None:
        self.session = session
        self.entitlements = entitlements
        self.exchanges = exchanges
        self.box = secret_box
        self.config = config or TradingConfig()
        self.clock = clock
        self.repo = TradingRepository(session)
        self.audit = AuditRepository(session)
        self._redact = redact
        self._trading = TradingService(session, exchanges, self.config, clock=clock)

    @property
    def confirm_ttl(self) -> timedelta:
        return self.config.confirm_ttl

    def shield(self, *values: str | None) -> None:
        """Tell the log scrubber about secrets the moment they arrive, valid or not."""
        if self._redact is None:
            return
        for value in values:
            if value:
                self._redact(value)
                if value.strip() != value:
                    self._redact(value.strip())

    async def forget_update(self, bot_id: int, update_id: int) -> bool:
        """Blank the text of a stored update that held a secret (the inbox keeps every update it received).

        Runs in the update's own transaction, so it commits together with the inbox row that marks the update
        handled: an update that is retried after a crash still has its text."""
        row = await InboxRepository(self.session).get(bot_id, update_id)
        if row is None:
            return False
        payload = dict(row.payload)
        changed = False
        for kind in _MESSAGE_KINDS:
            message = payload.get(kind)
            if isinstance(message, dict):
                blanked = {k: (REDACTED if k in ("text", "caption") else v) for k, v in message.items()}
                blanked.pop("entities", None)
                blanked.pop("caption_entities", None)
                changed = changed or blanked != message
                payload[kind] = blanked
        if changed:
            row.payload = payload
            await self.session.flush()
        return changed

    # -- the wizard's drafts (kept in FSM storage between messages, encrypted) -----------------------------

    def seal_draft(self, user: UserProfile, field: str, value: str) -> str:
        return self.box.encrypt(value, _draft_context(user.id, field))

    def open_draft(self, user: UserProfile, field: str, token: str) -> str:
        try:
            return self.box.decrypt(token, _draft_context(user.id, field))
        except DecryptionError:
            raise CredentialsUnreadable() from None

    # -- connect -------------------------------------------------------------------------------------------

    async def connect(
        self,
        user: UserProfile,
        exchange: str,
        api_key: str,
        secret: str,
        passphrase: str | None = None,
    ) -> Connected:
        """Check the key with the exchange (a balance call; Binance: no withdrawal permission), store it
        encrypted, replace an earlier key of the same exchange, and commit."""
        self.shield(api_key, secret, passphrase)
        credentials = self._credentials_from_input(exchange, api_key, secret, passphrase)
        balances = await self._verify(exchange, credentials)
        valued, total = await self._value(exchange, balances)
        profile, _ = await self._trading.active_account(user)
        replaced = await self._retire_exchange(user, profile, exchange)
        account = await self.repo.add_account(self._sealed_row(user, exchange, credentials))
        await self.audit.add(
            "account.connected",
            tenant_id=user.tenant_id,
            user_id=user.id,
            details={
                "account_id": account.id,
                "exchange": exchange,
                "key_hint": account.key_hint,
                "replaced": replaced,
            },
        )
        await self.session.commit()
        return Connected(
            account=_view(account, profile.active_account_id),
            balances=valued,
            total_value=total,
            quote=self.config.paper_quote,
            replaced=len(replaced),
        )

    def _credentials_from_input(
        self, exchange: str, api_key: str, secret: str, passphrase: str | None
    ) -> Credentials:
        check_exchange(exchange)
        key = check_field("api_key", api_key)
        code = check_field("secret", secret)
        phrase: str | None = None
        if exchange in NEEDS_PASSPHRASE:
            if not (passphrase or "").strip():
                raise PassphraseRequired(exchange=exchange)
            phrase = check_field("passphrase", passphrase)
        return Credentials(api_key=key, secret=code, passphrase=phrase)

    async def _verify(self, exchange: str, credentials: Credentials) -> dict[str, Balance]:
        client = self.exchanges.private(exchange, credentials)
        try:
            balances = await client.fetch_balance()
            can_withdraw = await client.withdrawal_enabled()
        except ExchangeAuthError:
            raise InvalidApiKey(exchange=exchange) from None
        except ExchangePermissionError:
            raise KeyNotPermitted(exchange=exchange) from None
        finally:
            await client.close()
        if can_withdraw:
            raise WithdrawalsEnabled(exchange=exchange)
        return balances

    async def _value(
        self, exchange: str, balances: dict[str, Balance]
    ) -> tuple[tuple[AssetValue, ...], Decimal]:
        """Each asset in the quote currency (stablecoins at 1), best effort: a failed price lookup leaves
        the asset unpriced instead of failing the connection."""
        quote = self.config.paper_quote
        prices: dict[str, Decimal] = {asset: Decimal(1) for asset in balances if asset in STABLES}
        wanted = [asset for asset in balances if asset not in prices]
        if wanted:
            prices.update(await self._prices(exchange, wanted, quote))
        values = [
            AssetValue(b.asset, b.total, b.total * prices[b.asset] if b.asset in prices else None)
            for b in balances.values()
            if b.total > 0
        ]
        values.sort(key=lambda v: (-(v.value if v.value is not None else ZERO), v.asset))
        total = sum((v.value for v in values if v.value is not None), ZERO)
        return tuple(values), total

    async def _prices(self, exchange: str, assets: list[str], quote: str) -> dict[str, Decimal]:
        client = self.exchanges.public(exchange)
        try:
            markets = await client.load_markets()
            symbols = [f"{asset}/{quote}" for asset in assets if f"{asset}/{quote}" in markets]
            tickers = await client.fetch_tickers(symbols) if symbols else {}
        except ExchangeError as exc:
            log.warning("accounts: pricing balances on %s failed: %s", exchange, type(exc).__name__)
            return {}
        return {symbol.split("/")[0]: ticker.bid or ticker.last for symbol, ticker in tickers.items()}

    async def _retire_exchange(self, user: UserProfile, profile: TradingProfile, exchange: str) -> list[int]:
        """Soft-remove the user's current accounts of this exchange (a reconnect replaces them)."""
        retired: list[int] = []
        for old in await self.repo.accounts(user.id):
            if old.is_paper or old.exchange != exchange:
                continue
            if await self._retire(user, profile, old, reason="replaced"):
                retired.append(old.id)
        return retired

    async def _retire(
        self, user: UserProfile, profile: TradingProfile, account: ExchangeAccount, *, reason: str
    ) -> bool:
        """Soft-remove once (a guarded update: of two concurrent removals one wins) and erase the secrets."""
        result = await self.session.execute(
            update(ExchangeAccount)
            .where(ExchangeAccount.id == account.id, ExchangeAccount.removed_at.is_(None))
            .values(removed_at=self.clock(), api_key_enc=None, secret_enc=None, passphrase_enc=None)
            .execution_options(synchronize_session="fetch")
        )
        if not getattr(result, "rowcount", 0):
            return False
        if profile.active_account_id == account.id:
            paper = await self._paper_account(user)
            profile.active_account_id = paper.id
        await self.audit.add(
            "account.removed",
            tenant_id=user.tenant_id,
            user_id=user.id,
            details={
                "account_id": account.id,
                "exchange": account.exchange,
                "key_hint": account.key_hint,
                "reason": reason,
            },
        )
        await self.session.flush()
        return True

    async def _paper_account(self, user: UserProfile) -> ExchangeAccount:
        paper = next((a for a in await self.repo.accounts(user.id) if a.is_paper), None)
        if paper is not None:
            return paper
        _, active = await self._trading.active_account(user)  # recreates the paper account if needed
        return active

    def _sealed_row(self, user: UserProfile, exchange: str, credentials: Credentials) -> ExchangeAccount:
        plain = {
            "api_key": credentials.api_key,
            "secret": credentials.secret,
            "passphrase": credentials.passphrase,
        }
        sealed = {
            name: self.box.encrypt(value, context(user.id, exchange, name)) if value is not None else None
            for name, value in plain.items()
        }
        return ExchangeAccount(
            user_id=user.id,
            exchange=exchange,
            is_paper=False,
            api_key_enc=sealed["api_key"],
            secret_enc=sealed["secret"],
            passphrase_enc=sealed["passphrase"],
            key_hint=key_hint(credentials.api_key),
            created_at=self.clock(),
        )

    # -- list, switch, remove ------------------------------------------------------------------------------

    async def accounts(self, user: UserProfile) -> list[AccountView]:
        """The paper account first, then live accounts in connection order; one of them is active."""
        profile, _ = await self._trading.active_account(user)
        rows = await self.repo.accounts(user.id)
        views = [_view(row, profile.active_account_id) for row in rows]
        return sorted(views, key=lambda v: (not v.is_paper, v.id))

    async def _owned(self, user: UserProfile, account_id: int) -> ExchangeAccount:
        account = await self.repo.account(account_id)
        if account is None or account.user_id != user.id or account.removed_at is not None:
            raise AccountNotFound()
        return account

    async def request_switch(self, user: UserProfile, account_id: int) -> SwitchRequest:
        """Switching to paper happens at once; switching to a live account needs a confirmation that
        expires (the returned token, for :meth:`confirm_switch`)."""
        account = await self._owned(user, account_id)
        profile, active = await self._trading.active_account(user)
        ttl = int(self.confirm_ttl.total_seconds())
        if account.id == active.id:
            return SwitchRequest(_view(account, active.id), None, None, ttl)
        if account.is_paper:
            await self._activate(user, profile, account, previous=active)
            await self.session.commit()
            return SwitchRequest(_view(account, account.id), None, None, ttl)
        if self.entitlements is not None:
            await self.entitlements.require(user.id, "live_trading", exchange=account.exchange)
        now = self.clock()
        token = token_source.token_hex(8)
        expires = now + self.confirm_ttl
        await self.repo.add_pending(
            PendingAction(
                id=token,
                user_id=user.id,
                kind=SWITCH_KIND,
                payload={"account_id": account.id},
                created_at=now,
                expires_at=expires,
            )
        )
        await self.session.commit()
        return SwitchRequest(_view(account, active.id), token, expires, ttl)

    async def confirm_switch(self, user: UserProfile, token: str) -> AccountView:
        """Single use and expiring: a stale, foreign or repeated confirmation switches nothing."""
        action = await self.repo.pending(token)
        if action is None or action.user_id != user.id or action.kind != SWITCH_KIND:
            raise SwitchExpired()
        claimed = await self.repo.claim_pending(token, user.id, self.clock())
        if claimed is None:
            raise SwitchExpired()
        profile, active = await self._trading.active_account(user)
        account = await self.repo.account(int(claimed.payload["account_id"]))
        if account is None or account.user_id != user.id or account.removed_at is not None:
            await self.repo.finish_pending(claimed, "gone")
            await self.session.commit()
            raise AccountNotFound()
        if self.entitlements is not None and not account.is_paper:
            decision = await self.entitlements.check(user.id, "live_trading", exchange=account.exchange)
            if not decision.allowed:
                await self.repo.finish_pending(claimed, "refused")
                await self.session.commit()
                decision.raise_if_refused()
        await self._activate(user, profile, account, previous=active)
        await self.repo.finish_pending(claimed, "switched")
        await self.session.commit()
        return _view(account, account.id)

    async def cancel_switch(self, user: UserProfile, token: str) -> bool:
        action = await self.repo.pending(token)
        if action is None or action.kind != SWITCH_KIND:
            return False
        claimed = await self.repo.claim_pending(token, user.id, self.clock())
        if claimed is None:
            return False
        await self.repo.finish_pending(claimed, "cancelled")
        await self.session.commit()
        return True

    async def _activate(
        self,
        user: UserProfile,
        profile: TradingProfile,
        account: ExchangeAccount,
        *,
        previous: ExchangeAccount,
    ) -> None:
        profile.active_account_id = account.id
        await self.audit.add(
            "account.switched",
            tenant_id=user.tenant_id,
            user_id=user.id,
            details={
                "from_account_id": previous.id,
                "to_account_id": account.id,
                "mode": PAPER if account.is_paper else "live",
                "exchange": account.exchange,
            },
        )
        await self.session.flush()

    async def account(self, user: UserProfile, account_id: int) -> AccountView:
        account = await self._owned(user, account_id)
        profile, _ = await self._trading.active_account(user)
        return _view(account, profile.active_account_id)

    async def remove(self, user: UserProfile, account_id: int) -> AccountView:
        """Soft delete (the encrypted secrets are erased); if it was active, paper becomes active."""
        account = await self._owned(user, account_id)
        if account.is_paper:
            raise PaperNotRemovable()
        profile, _ = await self._trading.active_account(user)
        was_active = profile.active_account_id == account.id
        if not await self._retire(user, profile, account, reason="removed"):
            raise AccountNotFound()
        await self.session.commit()
        return AccountView(
            id=account.id,
            exchange=account.exchange,
            is_paper=False,
            key_hint=account.key_hint,
            active=was_active,
            created_at=account.created_at,
        )

    # -- secrets for live trading and key rotation ---------------------------------------------------------

    async def credentials(self, account: int | ExchangeAccount) -> Credentials:
        """The decrypted key of a live account (for the exchange client; never shown or logged)."""
        row = await self.repo.account(account) if isinstance(account, int) else account
        if row is None or row.is_paper or row.removed_at is not None or not row.api_key_enc:
            raise AccountNotFound()
        if not row.secret_enc:
            raise CredentialsUnreadable()
        api_key = self._open(row, "api_key", row.api_key_enc)
        secret = self._open(row, "secret", row.secret_enc)
        passphrase = self._open(row, "passphrase", row.passphrase_enc) if row.passphrase_enc else None
        self.shield(api_key, secret, passphrase)
        return Credentials(api_key=api_key, secret=secret, passphrase=passphrase)

    def _open(self, row: ExchangeAccount, field: str, token: str) -> str:
        try:
            return self.box.decrypt(token, context(row.user_id, row.exchange, field))
        except DecryptionError:
            log.warning("accounts: stored %s of account %s can't be decrypted", field, row.id)
            raise CredentialsUnreadable(exchange=row.exchange) from None

    async def rotate_keys(self) -> RotationReport:
        """Re-encrypt every stored secret under the current (first) master key, in batches, committing each
        batch; rows no configured key opens are counted as failed and left as they are."""
        seen = rotated = failed = 0
        last_id = 0
        while True:
            rows = await self._sealed_rows_after(last_id)
            if not rows:
                break
            for row in rows:
                seen += 1
                try:
                    rotated += self._rotate_row(row)
                except DecryptionError:
                    failed += 1
                    log.warning("accounts: rotation can't open the secrets of account %s", row.id)
            last_id = rows[-1].id
            await self.session.commit()
        return RotationReport(accounts=seen, rotated=rotated, failed=failed)

    async def _sealed_rows_after(self, last_id: int) -> list[ExchangeAccount]:
        stmt = (
            select(ExchangeAccount)
            .where(
                ExchangeAccount.id > last_id,
                ExchangeAccount.is_paper.is_(False),
                ExchangeAccount.api_key_enc.is_not(None),
            )
            .order_by(ExchangeAccount.id)
            .limit(_ROTATION_BATCH)
        )
        return list((await self.session.scalars(stmt)).all())

    def _rotate_row(self, row: ExchangeAccount) -> int:
        """Rotate all fields of a row or none (a row is never left half rotated)."""
        updates: dict[str, str] = {}
        for field in FIELDS:
            token: Any = getattr(row, f"{field}_enc")
            if token and self.box.needs_rotation(token):
                updates[field] = self.box.rotate(token, context(row.user_id, row.exchange, field))
        for field, token in updates.items():
            setattr(row, f"{field}_enc", token)
        return len(updates)


__all__ = [
    "AccountNotFound",
    "AccountService",
    "AccountView",
    "AssetValue",
    "Connected",
    "CredentialFormatError",
    "CredentialsUnreadable",
    "Exchanges",
    "InvalidApiKey",
    "KeyNotPermitted",
    "PaperNotRemovable",
    "PassphraseRequired",
    "RotationReport",
    "SwitchExpired",
    "SwitchRequest",
    "UnsupportedExchange",
    "WithdrawalsEnabled",
    "check_field",
    "context",
    "key_hint",
]
