"""ccxt exceptions (with the messages ccxt 4.5 builds from each exchange's answers) -> our typed errors."""

from __future__ import annotations

from decimal import Decimal

import ccxt.async_support as ccxt
import pytest

from services.errors import AppError, RateLimited, TemporaryError
from services.exchanges.errors import (
    DuplicateOrderError,
    ExchangeAuthError,
    ExchangeError,
    ExchangePermissionError,
    ExchangeRateLimited,
    ExchangeTemporaryError,
    ExchangeUnavailable,
    InsufficientFundsError,
    InvalidOrderError,
    OrderBelowMinimum,
    OrderNotFoundError,
    OrderNotPlaced,
    OrderOutcomeUnknown,
    UnknownSymbolError,
    map_ccxt_error,
    safe_detail,
)

SIGNED_URL = (
    "GET http://127.0.0.1:33187/api/v3/account?timestamp=1795475256566&recvWindow=10000"
    "&signature=01673955a15e289b28c07e56e4c782695c82b5c3cb3d698277a37be23debd3a8"
)

CASES = [
    # (exchange, ccxt class, message, our class, detail)
    (
        "binance",
        ccxt.AuthenticationError,
        'binance {"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}',
        ExchangeAuthError,
        "-2015 Invalid API-key, IP, or permissions for action.",
    ),
    (
        "binance",
        ccxt.AuthenticationError,
        'binance {"code":-1022,"msg":"Signature for this request is not valid."}',
        ExchangeAuthError,
        "-1022 Signature for this request is not valid.",
    ),
    (
        "binance",
        ccxt.DDoSProtection,
        'binance {"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}',
        ExchangeAuthError,
        None,
    ),
    (
        "kraken",
        ccxt.AuthenticationError,
        'kraken {"error":["EAPI:Invalid key"]}',
        ExchangeAuthError,
        "EAPI:Invalid key",
    ),
    (
        "kucoin",
        ccxt.AuthenticationError,
        'kucoin {"code":"400004","msg":"Invalid KC-API-PASSPHRASE"}',
        ExchangeAuthError,
        "400004 Invalid KC-API-PASSPHRASE",
    ),
    (
        "kucoin",
        ccxt.AuthenticationError,
        'kucoin {"code":"400003","msg":"KC-API-KEY not exists"}',
        ExchangeAuthError,
        None,
    ),
    (
        "binance",
        ccxt.InvalidNonce,
        'binance {"code":-1021,"msg":"Timestamp for this request is outside of the recvWindow."}',
        ExchangeTemporaryError,
        None,
    ),
    (
        "kraken",
        ccxt.InvalidNonce,
        'kraken {"error":["EAPI:Invalid nonce"]}',
        ExchangeTemporaryError,
        "EAPI:Invalid nonce",
    ),
    (
        "kucoin",
        ccxt.InvalidNonce,
        'kucoin {"code":"400002","msg":"KC-API-TIMESTAMP Invalid -- '
        'Time differs from server time by more than 5 seconds"}',
        ExchangeTemporaryError,
        None,
    ),
    (
        "binance",
        ccxt.InsufficientFunds,
        "binance Account has insufficient balance for requested action.",
        InsufficientFundsError,
        "Account has insufficient balance for requested action.",
    ),
    (
        "kraken",
        ccxt.InsufficientFunds,
        'kraken {"error":["EOrder:Insufficient funds"]}',
        InsufficientFundsError,
        None,
    ),
    (
        "kucoin",
        ccxt.InsufficientFunds,
        'kucoin {"code":"200004","msg":"Balance insufficient!"}',
        InsufficientFundsError,
        None,
    ),
    (
        "binance",
        ccxt.InvalidOrder,
        'binance {"code":-1013,"msg":"Filter failure: LOT_SIZE"}',
        InvalidOrderError,
        "-1013 Filter failure: LOT_SIZE",
    ),
    (
        "binance",
        ccxt.InvalidOrder,
        "binance amount of BTC/USDT must be greater than minimum amount precision of 0.00001",
        OrderBelowMinimum,
        None,
    ),
    (
        "kraken",
        ccxt.InvalidOrder,
        'kraken {"error":["EOrder:Order minimum not met"]}',
        OrderBelowMinimum,
        None,
    ),
    (
        "kucoin",
        ccxt.InvalidOrder,
        'kucoin {"code":"400100","msg":"Order size below the minimum requirement."}',
        OrderBelowMinimum,
        None,
    ),
    (
        "binance",
        ccxt.BadRequest,
        'binance {"code":-1013,"msg":"Filter failure: NOTIONAL"}',
        OrderBelowMinimum,
        "-1013 Filter failure: NOTIONAL",
    ),
    (
        "kraken",
        ccxt.ExchangeError,
        'kraken {"error":["EOrder:Cost minimum not met"]}',
        OrderBelowMinimum,
        "EOrder:Cost minimum not met",
    ),
    (
        "kucoin",
        ccxt.BadRequest,
        'kucoin {"code":"400100","msg":"Order funds below the minimum requirement."}',
        OrderBelowMinimum,
        None,
    ),
    (
        "kraken",
        ccxt.InvalidOrder,
        'kraken {"error":["EGeneral:Invalid arguments:volume"]}',
        InvalidOrderError,
        None,
    ),
    ("kraken", ccxt.ExchangeError, 'kraken {"error":["EOrder:Tick size check failed"]}', ExchangeError, None),
    (
        "kucoin",
        ccxt.BadRequest,
        'kucoin {"code":"400100","msg":"Price increment invalid."}',
        InvalidOrderError,
        None,
    ),
    (
        "binance",
        ccxt.InvalidOrder,
        'binance {"code":-2010,"msg":"Duplicate order sent."}',
        DuplicateOrderError,
        None,
    ),
    ("kraken", ccxt.ExchangeError, 'kraken {"error":["EOrder:Duplicate order"]}', DuplicateOrderError, None),
    (
        "kucoin",
        ccxt.BadRequest,
        'kucoin {"code":"400100","msg":"validation.createOrder.clientOidDuplicated"}',
        DuplicateOrderError,
        None,
    ),
    (
        "binance",
        ccxt.OrderNotFound,
        'binance {"code":-2013,"msg":"Order does not exist."}',
        OrderNotFoundError,
        None,
    ),
    (
        "binance",
        ccxt.OrderNotFound,
        'binance {"code":-2011,"msg":"Unknown order sent."}',
        OrderNotFoundError,
        None,
    ),
    (
        "kraken",
        ccxt.OrderNotFound,
        'kraken cancelOrder() error {"error":["EOrder:Unknown order"]}',
        OrderNotFoundError,
        "EOrder:Unknown order",
    ),
    (
        "kucoin",
        ccxt.OrderNotFound,
        'kucoin {"code":"400100","msg":"order_not_exist"}',
        OrderNotFoundError,
        "400100 order_not_exist",
    ),
    (
        "binance",
        ccxt.PermissionDenied,
        'binance {"code":-2010,"msg":"This account may not place or cancel orders."}',
        ExchangePermissionError,
        None,
    ),
    (
        "binance",
        ccxt.InsufficientFunds,
        'binance {"code":-2010,"msg":"This account may not place or cancel orders."}',
        InsufficientFundsError,
        None,
    ),
    (
        "kraken",
        ccxt.PermissionDenied,
        'kraken {"error":["EGeneral:Permission denied"]}',
        ExchangePermissionError,
        None,
    ),
    (
        "kucoin",
        ccxt.AuthenticationError,
        'kucoin {"code":"400007","msg":"Access denied, require more permission."}',
        ExchangePermissionError,
        None,
    ),
    ("binance", ccxt.BadSymbol, 'binance {"code":-1121,"msg":"Invalid symbol."}', UnknownSymbolError, None),
    (
        "kraken",
        ccxt.ExchangeError,
        'kraken {"error":["EQuery:Unknown asset pair"]}',
        UnknownSymbolError,
        None,
    ),
    (
        "kucoin",
        ccxt.BadSymbol,
        'kucoin {"code":"400100","msg":"Unsupported trading pair."}',
        UnknownSymbolError,
        None,
    ),
    ("binance", ccxt.OnMaintenance, "binance System is under maintenance.", ExchangeTemporaryError, None),
    (
        "kraken",
        ccxt.ExchangeNotAvailable,
        'kraken {"error":["EService:Unavailable"]}',
        ExchangeTemporaryError,
        "EService:Unavailable",
    ),
    (
        "kucoin",
        ccxt.ExchangeNotAvailable,
        'kucoin {"code":"500000","msg":"Service unavailable, please try again later."}',
        ExchangeTemporaryError,
        None,
    ),
    (
        "binance",
        ccxt.ExchangeNotAvailable,
        f"binance {SIGNED_URL} 500 Internal Server Error <html><body><h1>500 Error</h1></body></html>",
        ExchangeTemporaryError,
        "500 Internal Server Error",
    ),
    (
        "kraken",
        ccxt.RequestTimeout,
        "kraken POST http://127.0.0.1:39473/0/private/BalanceEx",
        ExchangeTemporaryError,
        None,
    ),
    ("binance", ccxt.RequestTimeout, f"binance {SIGNED_URL}", ExchangeTemporaryError, None),
    (
        "kucoin",
        ccxt.NetworkError,
        "kucoin GET http://127.0.0.1:36205/api/v1/accounts?type=trade",
        ExchangeTemporaryError,
        None,
    ),
    (
        "binance",
        ccxt.RateLimitExceeded,
        'binance {"code":-1003,"msg":"Too many requests."}',
        ExchangeRateLimited,
        None,
    ),
    (
        "kraken",
        ccxt.DDoSProtection,
        'kraken {"error":["EAPI:Rate limit exceeded"]}',
        ExchangeRateLimited,
        None,
    ),
    ("kucoin", ccxt.NotSupported, 'kucoin {"code":"404000","msg":"Url Not Found"}', ExchangeError, None),
    ("binance", ccxt.BadResponse, "binance returned an empty response", ExchangeTemporaryError, None),
]


@pytest.mark.parametrize(("exchange_id", "ccxt_class", "message", "expected", "detail"), CASES)
def test_mapping(
    exchange_id: str, ccxt_class: type[Exception], message: str, expected: type[Exception], detail: str | None
) -> None:
    error = map_ccxt_error(ccxt_class(message), exchange_id)
    assert type(error) is expected
    assert isinstance(error, AppError) and error.message_key.startswith("exchange.")
    assert error.params["exchange"] == exchange_id and error.exchange == exchange_id
    if detail is not None:
        assert error.detail == detail
    rendered = f"{error} {error.params} {error.detail}"
    assert "signature" not in rendered and "http" not in rendered and "<" not in rendered


def test_temporary_errors_are_the_products_temporary_errors() -> None:
    timeout = map_ccxt_error(ccxt.RequestTimeout("binance GET http://x/api"), "binance")
    assert isinstance(timeout, TemporaryError) and timeout.params["reason"] == "timeout"
    assert map_ccxt_error(ccxt.InvalidNonce("x"), "kraken").params["reason"] == "clock"
    assert map_ccxt_error(ccxt.OnMaintenance("x"), "binance").params["reason"] == "maintenance"
    limited = map_ccxt_error(ccxt.RateLimitExceeded("x"), "binance")
    assert isinstance(limited, RateLimited) and isinstance(limited, ExchangeTemporaryError)
    unavailable = ExchangeUnavailable("kraken", 12.2)
    assert isinstance(unavailable, TemporaryError) and not isinstance(unavailable, ExchangeTemporaryError)
    assert unavailable.params == {"exchange": "kraken", "detail": None, "retry_in": 13}


def test_typed_errors_are_not_mapped_again() -> None:
    error = OrderNotPlaced(exchange="binance", client_order_id="c1")
    assert map_ccxt_error(error, "binance") is error


def test_transport_errors_outside_ccxt() -> None:
    assert type(map_ccxt_error(TimeoutError(), "binance")) is ExchangeTemporaryError
    assert type(map_ccxt_error(ConnectionResetError(), "binance")) is ExchangeTemporaryError
    other = map_ccxt_error(KeyError("secret-value"), "binance")
    assert type(other) is ExchangeError and "secret-value" not in str(other.params)


def test_error_params() -> None:
    below = OrderBelowMinimum(exchange="binance", minimum=Decimal("5"), unit="USDT")
    assert below.params["minimum"] == Decimal("5") and below.params["unit"] == "USDT"
    assert isinstance(below, InvalidOrderError) and below.message_key == "exchange.order_below_minimum"
    unknown = UnknownSymbolError(exchange="binance", symbol="BTCC", suggestions=["BTC/USDT", "BCH/USDT"])
    assert unknown.params["suggestion"] == "BTC/USDT, BCH/USDT" and unknown.suggestions[0] == "BTC/USDT"
    assert UnknownSymbolError(exchange="binance", symbol="ZZZ").params["suggestion"] is None
    outcome = OrderOutcomeUnknown(exchange="kraken", symbol="BTC/USDT", client_order_id="c1")
    assert (
        outcome.message_key == "exchange.order_outcome_unknown" and outcome.params["client_order_id"] == "c1"
    )
    assert ExchangeError().message_key == "exchange.error"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (f"binance {SIGNED_URL} 502 Bad Gateway <html><body>x</body></html>", "502 Bad Gateway"),
        ("binance POST https://api.binance.com/api/v3/order?apiKey=abc&signature=ff 400", "400"),
        ("kraken something apikey=AbCdEf signature=ffff failed", "something apikey=*** signature=*** failed"),
        ("kraken key " + "A" * 56 + " rejected", "key *** rejected"),
        ('kucoin {"code":"400100","msg":"order_not_exist"}', "400100 order_not_exist"),
        ("binance ", None),
        ("word " * 100, ("word " * 100)[:199] + "…"),  # long details are cut
    ],
)
def test_safe_detail(message: str, expected: str | None) -> None:
    assert safe_detail(message, message.split(" ")[0] if " " in message else None) == expected
