"""Words the intent parser knows: coins, concepts (verbs, units, directions) and timeframes, per language.

English phrasing is always understood (the bundled speech model is English-only); Russian and Spanish
words are added for the main intents. A few Spanish words that are also English words (`a`, `no`, `de`,
`once`) count only when the text is Spanish.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

# Concepts
BUY, SELL, CLOSE, BALANCE, POSITIONS, PNL, ORDERS = (
    "buy",
    "sell",
    "close",
    "balance",
    "positions",
    "pnl",
    "orders",
)
SIGNAL, ANALYZE, CHART, ALERT, STOP, PROFIT, CANCEL, OFF = (
    "signal", "analyze", "chart", "alert", "stop", "profit", "cancel", "off"
)  # fmt: skip
ALL, HALF, QUARTER, PERCENT, USD, EUR = "all", "half", "quarter", "percent", "usd", "eur"
AT, MARKET, ABOVE, BELOW, REACH, RISE, FALL = "at", "market", "above", "below", "reach", "rise", "fall"
FOR, OF, NEG, SHOULD, HOUR, MINUTE, DAY = "for", "of", "neg", "should", "hour", "minute", "day"
HOW = "how"

TIMEFRAMES: Final = ("1m", "5m", "15m", "30m", "1h", "4h", "1d")
"""What /analyze accepts (services.market.data.TIMEFRAME_MS)."""

DEFAULT_COINS: Final = ("BTC", "ETH", "SOL")
"""Offered when a phrase names no coin."""

COINS: Final[Mapping[str, tuple[str, ...]]] = {
    "BTC": (
        "bitcoin", "bitcoins", "btc", "xbt", "bit coin", "bit coins", "bitcoin's", "биткоин", "биткоина",
        "биткоинов", "биткоину", "биткоином", "биткоине", "биткойн", "биткойна", "биток", "битка", "биткоины",
        "bitcóin",
    ),
    "ETH": (
        "ethereum", "ether", "eth", "etherium", "ethereums", "ethers", "ethereum's", "эфир", "эфира", "эфиру",
        "эфиром", "эфириум", "эфириума", "эфириуме", "этериум", "эфирка", "éter", "eter",
    ),
    "SOL": ("solana", "sol", "solanas", "солана", "соланы", "солану", "соланой", "солане", "сол"),
    "XRP": ("ripple", "xrp", "рипл", "рипла", "риппл", "x r p"),
    "DOGE": ("dogecoin", "doge", "doge coin", "dog coin", "doggy coin", "догикоин", "доги", "дожкоин"),
    "ADA": ("cardano", "ada", "кардано"),
    "BNB": ("bnb", "binance coin", "b n b", "бнб"),
    "LTC": ("litecoin", "ltc", "lite coin", "light coin", "лайткоин"),
    "DOT": ("polkadot", "polka dot"),
    "LINK": ("chainlink", "chain link"),
    "AVAX": ("avalanche", "avax"),
    "TRX": ("tron", "trx"),
    "SHIB": ("shiba inu", "shiba", "shib"),
    "TON": ("toncoin", "ton coin"),
    "MATIC": ("polygon", "matic"),
    "ATOM": ("cosmos",),
    "UNI": ("uniswap",),
    "XLM": ("stellar", "xlm"),
    "XMR": ("monero", "xmr"),
    "PEPE": ("pepe",),
    "SUI": ("sui",),
    "APT": ("aptos",),
    "ARB": ("arbitrum",),
    "BCH": ("bitcoin cash",),
    "ETC": ("ethereum classic",),
}  # fmt: skip

UPPERCASE_ONLY: Final = frozenset({"DOT", "LINK", "TON", "ATOM", "NEAR", "POL", "OP", "ONE", "WIF", "ENA"})
"""Tickers that are ordinary English words: a coin only when written in capitals."""

NOT_TICKERS: Final = frozenset(
    {
        "I", "OK", "USD", "USDT", "USDC", "EUR", "AM", "PM", "TP", "SL", "PNL", "TA", "US", "AN", "AT", "MY",
        "ME", "IT", "IS", "TO", "THE", "OF", "FOR", "ON", "IN", "AND", "OR", "NO", "YES", "BY", "UP", "SET",
        "BUY", "SELL", "ALL", "MAX", "HOUR", "DAY", "RSI", "MACD", "API", "ID", "WHAT", "SHOW", "HI", "SO",
        "DO", "BE", "GO", "IF", "AS", "OH", "PLEASE", "NOW", "CLOSE", "USA",
    }
)  # fmt: skip

FUZZY_NAMES: Final = (
    "bitcoin", "ethereum", "solana", "ripple", "dogecoin", "cardano", "litecoin", "polkadot", "chainlink",
    "avalanche", "polygon", "uniswap", "stellar", "monero", "arbitrum", "cosmos", "toncoin",
    "биткоин", "эфириум", "солана", "кардано",
)  # fmt: skip
"""Names long enough to be recognised when slightly misheard (`solaga` -> solana)."""

_EN: Final[Mapping[str, str]] = {
    # verbs
    "buy": BUY, "purchase": BUY, "acquire": BUY,
    "sell": SELL, "sold": SELL,
    "close": CLOSE, "exit": CLOSE, "liquidate": CLOSE, "flatten": CLOSE,
    "balance": BALANCE, "balances": BALANCE, "wallet": BALANCE, "funds": BALANCE,
    "how much money": BALANCE,
    "positions": POSITIONS, "position": POSITIONS, "open trades": POSITIONS, "trades": POSITIONS,
    "portfolio": POSITIONS, "holdings": POSITIONS,
    "pnl": PNL, "p n l": PNL, "p and l": PNL, "profit and loss": PNL, "how am i doing": PNL,
    "orders": ORDERS, "open orders": ORDERS,
    "signal": SIGNAL, "signals": SIGNAL, "trading signal": SIGNAL, "prediction": SIGNAL, "forecast": SIGNAL,
    "outlook": SIGNAL,
    "analyze": ANALYZE, "analyse": ANALYZE, "analysis": ANALYZE, "analyzed": ANALYZE, "analyses": ANALYZE,
    "technical analysis": ANALYZE, "how is": HOW, "hows": HOW, "look at": HOW, "how about": HOW,
    "chart": CHART, "charts": CHART, "graph": CHART,
    "alert": ALERT, "alerts": ALERT, "alarm": ALERT, "notify me": ALERT, "let me know": ALERT,
    "tell me when": ALERT, "ping me": ALERT, "remind me": ALERT, "notify": ALERT,
    "stop loss": STOP, "stop lost": STOP, "stoploss": STOP, "sl": STOP, "stop": STOP,
    "take profit": PROFIT, "takeprofit": PROFIT, "tp": PROFIT, "profit target": PROFIT,
    "cancel": CANCEL,
    "remove": OFF, "delete": OFF, "clear": OFF, "disable": OFF, "off": OFF,
    # amounts and units
    "all": ALL, "everything": ALL, "entire": ALL, "whole": ALL, "max": ALL, "maximum": ALL,
    "all of it": ALL,
    "half": HALF, "quarter": QUARTER, "quarters": QUARTER,
    "percent": PERCENT, "percents": PERCENT, "per cent": PERCENT, "pct": PERCENT,
    "dollars": USD, "dollar": USD, "bucks": USD, "usd": USD, "usdt": USD, "tether": USD, "us dollars": USD,
    "euros": EUR, "euro": EUR, "eur": EUR,
    # prices and directions
    "at": AT, "@": AT, "limit": AT, "at a price of": AT, "price of": AT, "at price": AT,
    "at market": MARKET, "market price": MARKET, "market order": MARKET, "at the market": MARKET,
    "market": MARKET,
    "above": ABOVE, "over": ABOVE, "exceeds": ABOVE, "exceed": ABOVE, "higher than": ABOVE,
    "more than": ABOVE, "surpasses": ABOVE, "breaks": ABOVE,
    "below": BELOW, "under": BELOW, "lower than": BELOW, "less than": BELOW,
    "hits": REACH, "hit": REACH, "reaches": REACH, "reach": REACH, "gets to": REACH, "crosses": REACH,
    "touches": REACH,
    "rises": RISE, "rise": RISE, "pumps": RISE, "goes up": RISE, "gains": RISE, "jumps": RISE, "up": RISE,
    "climbs": RISE,
    "drops": FALL, "drop": FALL, "falls": FALL, "fall": FALL, "dumps": FALL, "goes down": FALL,
    "loses": FALL, "crashes": FALL, "down": FALL, "dips": FALL,
    "for": FOR, "with": FOR, "worth": FOR, "worth of": FOR,
    "of": OF,
    "dont": NEG, "don't": NEG, "do not": NEG, "never": NEG,
    "should": SHOULD, "is it a good time to": SHOULD,
    # time units (after a number)
    "hour": HOUR, "hours": HOUR, "hr": HOUR, "hrs": HOUR, "h": HOUR, "rower": HOUR, "router": HOUR,
    "our": HOUR, "hourly": HOUR,
    "minute": MINUTE, "minutes": MINUTE, "min": MINUTE, "mins": MINUTE,
    "day": DAY, "days": DAY, "daily": DAY,
}  # fmt: skip

_RU: Final[Mapping[str, str]] = {
    "купи": BUY, "купить": BUY, "куплю": BUY, "покупай": BUY, "покупка": BUY, "закупи": BUY, "докупи": BUY,
    "купите": BUY, "покупаю": BUY,
    "продай": SELL, "продать": SELL, "продаю": SELL, "продавай": SELL, "продажа": SELL, "слей": SELL,
    "продайте": SELL,
    "закрой": CLOSE, "закрыть": CLOSE, "закрывай": CLOSE, "закрою": CLOSE, "закройте": CLOSE,
    "баланс": BALANCE, "баланса": BALANCE, "балансе": BALANCE, "сколько денег": BALANCE,
    "кошелек": BALANCE, "кошелёк": BALANCE,
    "позиции": POSITIONS, "позиций": POSITIONS, "позицию": POSITIONS, "позиция": POSITIONS,
    "позициям": POSITIONS, "сделки": POSITIONS,
    "анализ": ANALYZE, "анализа": ANALYZE, "проанализируй": ANALYZE, "проанализировать": ANALYZE,
    "разбор": ANALYZE, "разбери": ANALYZE,
    "график": CHART, "графике": CHART, "графика": CHART, "чарт": CHART, "графику": CHART,
    "сигнал": SIGNAL, "сигнала": SIGNAL, "сигналы": SIGNAL, "прогноз": SIGNAL,
    "алерт": ALERT, "оповещение": ALERT, "уведоми": ALERT, "уведомление": ALERT, "напомни": ALERT,
    "сообщи": ALERT,
    "выше": ABOVE, "больше": ABOVE, "превысит": ABOVE, "ниже": BELOW, "меньше": BELOW,
    "всё": ALL, "все": ALL, "весь": ALL, "всю": ALL, "целиком": ALL, "полностью": ALL,
    "половину": HALF, "половина": HALF, "половины": HALF, "пол": HALF,
    "четверть": QUARTER, "четверти": QUARTER,
    "процентов": PERCENT, "процента": PERCENT, "процент": PERCENT,
    "долларов": USD, "доллара": USD, "доллар": USD, "баксов": USD, "бакса": USD, "долларах": USD,
    "евро": EUR,
    "на": FOR, "по": AT, "по цене": AT, "по рынку": MARKET, "по рыночной цене": MARKET,
    "не": NEG, "стоит ли": SHOULD,
    "час": HOUR, "часа": HOUR, "часов": HOUR, "минут": MINUTE, "минуты": MINUTE, "минута": MINUTE,
    "минуту": MINUTE, "день": DAY, "дня": DAY, "дней": DAY,
}  # fmt: skip

_ES: Final[Mapping[str, str]] = {
    "compra": BUY, "comprar": BUY, "compre": BUY, "cómprame": BUY, "comprame": BUY, "compro": BUY,
    "vende": SELL, "vender": SELL, "venda": SELL, "véndeme": SELL, "vendo": SELL,
    "cierra": CLOSE, "cerrar": CLOSE, "cierre": CLOSE, "ciérrame": CLOSE, "cierrame": CLOSE,
    "saldo": BALANCE,
    "posiciones": POSITIONS, "posición": POSITIONS, "posicion": POSITIONS,
    "analiza": ANALYZE, "analizar": ANALYZE, "análisis": ANALYZE, "analisis": ANALYZE,
    "gráfico": CHART, "grafico": CHART, "gráfica": CHART, "grafica": CHART,
    "señal": SIGNAL, "senal": SIGNAL, "señales": SIGNAL,
    "alerta": ALERT, "avísame": ALERT, "avisame": ALERT, "notifícame": ALERT,
    "encima de": ABOVE, "por encima de": ABOVE, "supere": ABOVE, "supera": ABOVE,
    "debajo de": BELOW, "por debajo de": BELOW,
    "todo": ALL, "toda": ALL, "todos": ALL, "todas": ALL,
    "mitad": HALF, "cuarto": QUARTER,
    "por ciento": PERCENT, "porciento": PERCENT,
    "dólares": USD, "dolares": USD, "dólar": USD, "dolar": USD,
    "al precio de": AT, "a mercado": MARKET, "a precio de mercado": MARKET, "al mercado": MARKET,
    "debería": SHOULD, "deberia": SHOULD, "debo": SHOULD,
    "hora": HOUR, "horas": HOUR, "horario": HOUR, "minuto": MINUTE, "minutos": MINUTE,
    "día": DAY, "dia": DAY, "días": DAY, "dias": DAY, "diario": DAY, "diaria": DAY,
}  # fmt: skip

_ES_ONLY: Final[Mapping[str, str]] = {"a": AT, "al": AT, "no": NEG, "de": OF, "por": FOR, "con": FOR}

CONCEPTS: Final[Mapping[str, Mapping[str, str]]] = {
    "en": {**_RU, **_ES, **_EN},
    "ru": {**_EN, **_ES, **_RU},
    "es": {**_EN, **_RU, **_ES, **_ES_ONLY},
}
"""Per detected language: phrase (words joined by single spaces) -> concept."""

SPANISH_MARKERS: Final = frozenset(
    {
        "compra", "comprar", "vende", "vender", "cierra", "cerrar", "saldo", "posiciones", "mitad", "todo",
        "dólares", "dolares", "analiza", "gráfico", "señal", "mis", "mi", "de", "del", "la", "el", "qué",
        "cuál", "cuánto", "muéstrame", "muestra", "cuatro", "horas", "cien", "mil",
    }
)  # fmt: skip

# Words that name a timeframe on their own (Russian adjectives are matched by prefix).
STANDALONE_TIMEFRAMES: Final[Mapping[str, str]] = {
    "hourly": "1h", "daily": "1d", "half an hour": "30m", "half hour": "30m", "half hourly": "30m",
    "hour chart": "1h", "day chart": "1d", "minute chart": "1m", "one hour": "1h", "an hour": "1h",
    "one day": "1d", "полчаса": "30m", "media hora": "30m", "diario": "1d", "diaria": "1d", "horario": "1h",
}  # fmt: skip
PREFIX_TIMEFRAMES: Final = (
    ("четырехчас", "4h"), ("четырёхчас", "4h"), ("пятнадцатиминут", "15m"), ("тридцатиминут", "30m"),
    ("пятиминут", "5m"), ("получас", "30m"), ("часов", "1h"), ("дневн", "1d"), ("дневк", "1d"),
    ("минутн", "1m"), ("минутк", "1m"),
)  # fmt: skip
RU_TIME_UNITS: Final = (("час", HOUR), ("минут", MINUTE), ("дн", DAY), ("ден", DAY))
