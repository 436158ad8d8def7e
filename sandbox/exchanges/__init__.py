"""Local emulators of the Binance, Kraken and KuCoin spot REST APIs, for real ccxt clients."""

from sandbox.exchanges.market import DEFAULT_SYMBOLS, Market, SymbolSpec
from sandbox.exchanges.server import EXCHANGE_IDS, ExchangeEmulator, start_all

__all__ = ["DEFAULT_SYMBOLS", "EXCHANGE_IDS", "ExchangeEmulator", "Market", "SymbolSpec", "start_all"]
