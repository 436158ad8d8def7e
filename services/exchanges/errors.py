"""Typed exchange errors (locale keys under ``exchange.*``) and the mapping from ccxt's exceptions.

Messages and params never carry secrets, signed URLs or HTML bodies: :func:`safe_detail` keeps only the
exchange's own error code and text (e.g. ``-2010 Account has insufficient balance``)."""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

from services.errors import AppError, RateLimited, TemporaryError

__all__ = [
    "DuplicateOrderError",
    "ExchangeAuthError",
    "ExchangeError",
    "ExchangePermissionError",
    "ExchangeRateLimited",
    "ExchangeTemporaryError",
    "ExchangeUnavailable",
    "InsufficientFundsError",
    "InvalidOrderError",
    "OrderBelowMinimum",
    "OrderNotFoundError",
    "OrderNotPlaced",
    "OrderOutcomeUnknown",
    "UnknownSymbolError",
    "map_ccxt_error",
    "safe_detail",
]

_MAX_DETAIL = 200


class ExchangeError(AppError):
    """Base of every exchange failure. ``params`` always hold ``exchange``; ``detail`` (the exchange's own
    error code and text, sanitised, possibly None) is in ``params`` and on the instance."""

    message_key = "exchange.error"

    def __init__(
        self,
        message_key: str | None = None,
        *,
        exchange: str | None = None,
        detail: str | None = None,
        **params: Any,
    ) -> None:
        super().__init__(message_key, exchange=exchange, detail=detail, **params)
        self.exchange = exchange
        self.detail = detail
        self.args = (
            f"{self.message_key} [{exchange}] {detail}" if detail else f"{self.message_key} [{exchange}]",
        )


class ExchangeTemporaryError(ExchangeError, TemporaryError):
    """Retryable: network failure, timeout, 5xx, maintenance, rate limit, nonce/clock. ``reason`` param:
    network | timeout | unavailable | maintenance | rate_limit | clock | bad_response."""

    message_key = "exchange.temporary"


class ExchangeRateLimited(ExchangeTemporaryError, RateLimited):
    message_key = "exchange.rate_limited"


class ExchangeUnavailable(ExchangeError, TemporaryError):
    """The circuit breaker is open: answered at once, nothing was sent. Not retried by :func:`retry`."""

    message_key = "exchange.unavailable"

    def __init__(self, exchange: str, retry_in: float, **params: Any) -> None:
        super().__init__(exchange=exchange, retry_in=max(1, math.ceil(retry_in)), **params)
        self.retry_in = max(1, math.ceil(retry_in))


class ExchangeAuthError(ExchangeError):
    """Wrong/unknown API key, bad signature or passphrase."""

    message_key = "exchange.auth_failed"


class ExchangePermissionError(ExchangeError):
    """The key is valid but may not do this (trading disabled, IP not whitelisted, ...)."""

    message_key = "exchange.permission_denied"


class InsufficientFundsError(ExchangeError):
    message_key = "exchange.insufficient_funds"


class InvalidOrderError(ExchangeError):
    """The exchange (or our pre-check) refused the order's parameters."""

    message_key = "exchange.invalid_order"


class OrderBelowMinimum(InvalidOrderError):
    """``minimum`` (Decimal or None when the exchange did not say) in ``unit`` (an asset code)."""

    message_key = "exchange.order_below_minimum"

    def __init__(
        self,
        *,
        exchange: str | None = None,
        minimum: Decimal | None = None,
        unit: str | None = None,
        detail: str | None = None,
        **params: Any,
    ) -> None:
        super().__init__(exchange=exchange, detail=detail, minimum=minimum, unit=unit, **params)
        self.minimum = minimum
        self.unit = unit


class DuplicateOrderError(InvalidOrderError):
    """An order with this client order id exists already (Binance/Kraken: while open; KuCoin: ever)."""

    message_key = "exchange.duplicate_order"


class OrderNotFoundError(ExchangeError):
    message_key = "exchange.order_not_found"


class UnknownSymbolError(ExchangeError):
    """``symbol`` is not a spot market of the exchange; ``suggestion``: the closest symbols, comma
    separated (None if nothing is close); ``suggestions`` attribute: the same as a tuple."""

    message_key = "exchange.unknown_symbol"

    def __init__(
        self,
        *,
        exchange: str | None = None,
        symbol: str | None = None,
        suggestions: tuple[str, ...] | list[str] = (),
        detail: str | None = None,
    ) -> None:
        self.symbol = symbol
        self.suggestions = tuple(suggestions)
        super().__init__(
            exchange=exchange,
            detail=detail,
            symbol=symbol,
            suggestion=", ".join(self.suggestions) or None,
        )


class OrderNotPlaced(ExchangeError):
    """Order creation failed in transit and the order is surely not on the exchange: the user may retry."""

    message_key = "exchange.order_not_placed"


class OrderOutcomeUnknown(ExchangeError):
    """Order creation failed in transit and the exchange could not be asked whether it exists. Never resent;
    a later check by ``client_order_id`` settles it."""

    message_key = "exchange.order_outcome_unknown"


# -- sanitising ----------------------------------------------------------------------------------------------
_HTML = re.compile(r"<(?:!doctype|html|body|head)\b.*$", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]{0,200}>")
_METHOD_URL = re.compile(r"\b(?:GET|POST|PUT|DELETE|PATCH|HEAD)\s+\S+://\S+")
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
_SECRET_PARAM = re.compile(
    r"(?i)\b(signature|sign|api[-_]?key|apikey|secret|passphrase|password|token|nonce|timestamp)=[^&\s\"']*"
)
_LONG_TOKEN = re.compile(r"[A-Za-z0-9+/=_-]{40,}")
_JSON = re.compile(r"[{\[].*[}\]]", re.DOTALL)


def _from_json(blob: str) -> str | None:
    try:
        data = json.loads(blob)
    except ValueError:
        return None
    if isinstance(data, dict):
        errors = data.get("error")
        if isinstance(errors, list) and errors:
            return "; ".join(str(e) for e in errors)
        code = data.get("code")
        msg = data.get("msg", data.get("message"))
        if code is not None or msg is not None:
            return " ".join(str(p) for p in (code, msg) if p is not None)
    return None


def safe_detail(message: str, exchange_id: str | None = None) -> str | None:
    """The exchange's error code and text from a ccxt message: no URL, query string, secret or HTML."""
    text = message.strip()
    if exchange_id and text.lower().startswith(exchange_id.lower()):
        text = text[len(exchange_id) :].strip()
    text = _HTML.sub("", text)
    text = _METHOD_URL.sub("", text)
    text = _URL.sub("", text)
    match = _JSON.search(text)
    if match:
        parsed = _from_json(match.group(0))
        if parsed is not None:
            text = parsed
    text = _TAG.sub(" ", text)
    text = _SECRET_PARAM.sub(lambda m: f"{m.group(1)}=***", text)
    text = _LONG_TOKEN.sub("***", text)
    text = " ".join(text.split())
    if len(text) > _MAX_DETAIL:
        text = text[: _MAX_DETAIL - 1] + "…"
    return text or None


# -- mapping -----------------------------------------------------------------------------------------------
_DUPLICATE = ("duplicate order", "clientoidduplicated", "duplicate client")
_BELOW_MIN_COST = ("notional", "cost minimum not met", "funds below the minimum")
_BELOW_MIN_AMOUNT = (
    "order minimum not met",
    "size below the minimum",
    "must be greater than minimum amount precision",
)
_UNKNOWN_SYMBOL = ("unknown asset pair", "unsupported trading pair", "invalid symbol")
_PERMISSION = ("permission denied", "may not place or cancel orders", "400007", "require more permission")


def _has(text: str, needles: tuple[str, ...]) -> bool:
    return any(n in text for n in needles)


def map_ccxt_error(exc: BaseException, exchange_id: str) -> ExchangeError:
    """Translate a ccxt (or transport) exception into our typed :class:`ExchangeError`."""
    # imported here: importing ccxt loads every exchange module (seconds without cached bytecode), and the
    # error classes above are used by code (the bot's error router) that never talks to an exchange
    from ccxt.base import errors as ccxt

    if isinstance(exc, ExchangeError):
        return exc
    raw = str(exc)
    low = raw.lower()
    detail = safe_detail(raw, exchange_id)
    kw: dict[str, Any] = {"exchange": exchange_id, "detail": detail}

    # -- transient (ccxt.NetworkError and friends) --
    if isinstance(exc, ccxt.DDoSProtection) and ("-2015" in raw or "api-key" in low):
        return ExchangeAuthError(**kw)  # Binance answers -2015 as DDoSProtection after a successful call
    if isinstance(exc, ccxt.InvalidNonce):
        return ExchangeTemporaryError(reason="clock", **kw)
    if isinstance(exc, (ccxt.RateLimitExceeded, ccxt.DDoSProtection)):
        return ExchangeRateLimited(reason="rate_limit", **kw)
    if isinstance(exc, ccxt.OnMaintenance):
        return ExchangeTemporaryError(reason="maintenance", **kw)
    if isinstance(exc, ccxt.RequestTimeout):
        return ExchangeTemporaryError(reason="timeout", **kw)
    if isinstance(exc, ccxt.ExchangeNotAvailable):
        return ExchangeTemporaryError(reason="unavailable", **kw)
    if isinstance(exc, ccxt.NetworkError):
        return ExchangeTemporaryError(reason="network", **kw)
    if isinstance(exc, ccxt.OperationFailed):  # BadResponse, NullResponse, CancelPending
        return ExchangeTemporaryError(reason="bad_response", **kw)

    # -- refusals (ccxt.ExchangeError) --
    if isinstance(exc, (ccxt.PermissionDenied, ccxt.AccountSuspended)):
        return ExchangePermissionError(**kw)
    if isinstance(exc, ccxt.AuthenticationError):
        if _has(low, _PERMISSION):  # KuCoin: trading disabled is 400007 (AuthenticationError)
            return ExchangePermissionError(**kw)
        return ExchangeAuthError(**kw)
    if isinstance(exc, ccxt.InsufficientFunds):
        return InsufficientFundsError(**kw)
    if isinstance(exc, ccxt.OrderNotFound):
        return OrderNotFoundError(**kw)
    if isinstance(exc, ccxt.DuplicateOrderId) or (
        isinstance(exc, ccxt.ExchangeError) and _has(low, _DUPLICATE)
    ):
        return DuplicateOrderError(**kw)
    if isinstance(exc, ccxt.BadSymbol) or (
        isinstance(exc, ccxt.ExchangeError) and _has(low, _UNKNOWN_SYMBOL)
    ):
        return UnknownSymbolError(exchange=exchange_id, detail=detail)
    if isinstance(exc, ccxt.ExchangeError) and _has(low, _PERMISSION):
        return ExchangePermissionError(**kw)
    if isinstance(exc, ccxt.ExchangeError) and _has(low, _BELOW_MIN_COST + _BELOW_MIN_AMOUNT):
        return OrderBelowMinimum(**kw)
    if isinstance(exc, (ccxt.InvalidOrder, ccxt.BadRequest, ccxt.ArgumentsRequired)):
        return InvalidOrderError(**kw)
    if isinstance(exc, ccxt.NotSupported):
        return ExchangeError("exchange.not_supported", **kw)
    if isinstance(exc, ccxt.BaseError):
        return ExchangeError(**kw)

    # -- transport errors that escaped ccxt --
    if isinstance(exc, TimeoutError):
        return ExchangeTemporaryError(reason="timeout", **kw)
    if isinstance(exc, (ConnectionError, OSError)) or type(exc).__module__.startswith("aiohttp"):
        return ExchangeTemporaryError(reason="network", **kw)
    return ExchangeError(exchange=exchange_id, detail=type(exc).__name__)
