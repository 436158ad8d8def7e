"""The default answer: a deterministic trading vote read from the prompt.

Only the user messages are read (system prompts are instructions, not market data):

* an RSI value (``RSI 25``, ``RSI(14): 72.5``, ``rsi14=30``): at or below 30 counts +2 (oversold), at or
  above 70 counts -2 (overbought), in between 0;
* trend words: ``bullish``, ``uptrend``, ``trend: up``, ``golden cross``, ``breakout``, ``higher highs``
  count +1 each, their bearish twins (``bearish``, ``downtrend``, ``trend: down``, ``death cross``,
  ``breakdown``, ``lower lows``) -1 each (at most two of each side); ``sideways``, ``ranging``, ``flat``,
  ``consolidating`` mark a neutral market;
* a price (``price 65000``, ``close: 64,950.5``, ``last $3.21``) for the stop and target levels;
* a timeframe (``timeframe: 1h``, ``interval 15m``, ``4h candles``) for the horizon.

A positive score votes ``buy``, a negative one ``sell``, zero ``hold``; probability is
``min(0.55 + 0.08 * |score|, 0.9)`` for buy/sell and 0.5 for hold (0.55 when the market is called neutral).
With none of these signals the vote is a seeded choice: ``random.Random(f"{seed}:{model}:{prompt}")`` picks
the action, a probability in [0.5, 0.75] and the horizon, so each model answers the same prompt the same way
every time while different models may disagree. Stop loss and take profit are price levels 2 % and 4 % away
from the price in the direction of the trade (hold: 2 % either side); without a price they are those
distances in percent (2.0 and 4.0).

The vote is then fitted to whatever schema the request carries (see :func:`sandbox.llm.schema.generate`):
properties are matched by name (``action``/``signal``/``decision``/``side``, ``probability``/``confidence``,
``horizon``/``timeframe``, ``stop_loss``/``sl``, ``take_profit``/``target``/``tp``,
``rationale``/``reason``/``reasoning``/``explanation``), actions to enum synonyms (``long``/``short``/
``neutral``...), horizons to the nearest enum duration, probabilities to a 0-100 scale when the schema's
maximum says so; everything else gets a plain schema-valid value.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import asdict, dataclass
from typing import Any

from sandbox.llm.schema import Schema, generate, violate

VOTE_SCHEMA: Schema = {
    "type": "object",
    "properties": {
        "action": {"type": "string", "enum": ["buy", "sell", "hold"]},
        "probability": {"type": "number", "minimum": 0, "maximum": 1},
        "horizon": {"type": "string"},
        "stop_loss": {"type": ["number", "null"]},
        "take_profit": {"type": ["number", "null"]},
        "rationale": {"type": "string"},
    },
    "required": ["action", "probability", "horizon", "stop_loss", "take_profit", "rationale"],
    "additionalProperties": False,
}

_RSI = re.compile(
    r"\brsi(?:[\s_-]?\(?\d{1,2}\)?(?=[\s:=]))?\s*(?:is|=|:|of|at|value)?\s*(\d{1,3}(?:\.\d+)?)(?!\d|\.\d)",
    re.I,
)
_PRICE = re.compile(
    r"\b(?:current price|price|close|last|spot)\b\s*(?:is|=|:|at|of)?\s*\$?\s*(\d[\d,]*(?:\.\d+)?)", re.I
)
_TIMEFRAME = re.compile(
    r"\b(?:timeframe|time frame|interval|horizon)\b\s*(?:is|=|:|of)?\s*(\d{1,3}\s*[mhdw])\b"
    r"|\b(\d{1,3}\s*[mhdw])\s+(?:candles?|bars?|chart)\b",
    re.I,
)
_BULLISH = re.compile(
    r"\b(?:bullish|up-?trend|trend\s*[:=]?\s*up(?:ward)?|golden cross|breakout|higher highs)\b", re.I
)
_BEARISH = re.compile(
    r"\b(?:bearish|down-?trend|trend\s*[:=]?\s*down(?:ward)?|death cross|breakdown|lower lows)\b", re.I
)
_NEUTRAL = re.compile(r"\b(?:sideways|range-?bound|ranging|flat|consolidat\w*)\b", re.I)
_HORIZONS = ("1h", "4h", "1d")
_UNIT_HOURS = {"m": 1 / 60, "h": 1.0, "d": 24.0, "w": 168.0}
_ACTION_SYNONYMS = {
    "buy": ("buy", "long", "bullish", "up", "enter_long", "strong_buy"),
    "sell": ("sell", "short", "bearish", "down", "enter_short", "strong_sell"),
    "hold": ("hold", "neutral", "flat", "wait", "none", "no_trade", "abstain"),
}
_ALIASES = {
    "action": ("action", "signal", "decision", "side", "recommendation", "vote", "direction", "position"),
    "probability": ("probability", "confidence", "prob", "likelihood", "certainty"),
    "stop_loss": ("stop_loss", "stoploss", "stop", "sl", "stop_price"),
    "take_profit": ("take_profit", "takeprofit", "target", "tp", "target_price", "profit_target"),
    "rationale": ("rationale", "reason", "reasoning", "explanation", "justification", "summary", "comment"),
}


@dataclass(frozen=True)
class Vote:
    action: str
    probability: float
    horizon: str
    stop_loss: float | None
    take_profit: float | None
    rationale: str
    price: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The vote's answer fields (``price``, what the levels were computed from, is left out)."""
        fields = asdict(self)
        fields.pop("price")
        return fields


def hours(horizon: str) -> float | None:
    """``"4h"`` -> 4.0, ``"1d"`` -> 24.0, ``"15m"`` -> 0.25; None when not a duration."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*", horizon.lower())
    return float(match.group(1)) * _UNIT_HOURS[match.group(2)] if match else None


def derive_vote(text: str, model: str = "", seed: int = 0) -> Vote:
    """The vote for a prompt (the user messages' text); see the module documentation for the rules."""
    reasons: list[str] = []
    score = 0
    signals = 0
    rsi_match = _RSI.search(text)
    if rsi_match:
        rsi = float(rsi_match.group(1))
        if 0 <= rsi <= 100:
            signals += 1
            if rsi <= 30:
                score += 2
                reasons.append(f"RSI {rsi:g} is oversold")
            elif rsi >= 70:
                score -= 2
                reasons.append(f"RSI {rsi:g} is overbought")
            else:
                reasons.append(f"RSI {rsi:g} is neutral")
    bullish = [m.group(0) for m in _BULLISH.finditer(text)][:2]
    bearish = [m.group(0) for m in _BEARISH.finditer(text)][:2]
    neutral = _NEUTRAL.search(text) is not None
    score += len(bullish) - len(bearish)
    signals += len(bullish) + len(bearish) + int(neutral)
    if bullish:
        reasons.append("bullish signs: " + ", ".join(bullish))
    if bearish:
        reasons.append("bearish signs: " + ", ".join(bearish))
    if neutral:
        reasons.append("the market is described as range-bound")

    price_match = _PRICE.search(text)
    price = float(price_match.group(1).replace(",", "")) if price_match else None
    tf_match = _TIMEFRAME.search(text)
    horizon = re.sub(r"\s+", "", (tf_match.group(1) or tf_match.group(2))).lower() if tf_match else "4h"

    if signals:
        action = "buy" if score > 0 else "sell" if score < 0 else "hold"
        hold_probability = 0.55 if neutral else 0.5
        probability = hold_probability if action == "hold" else min(0.55 + 0.08 * abs(score), 0.9)
    else:
        rng = random.Random(f"{seed}:{model}:{text}")
        action = rng.choice(("buy", "sell", "hold"))
        probability = rng.uniform(0.5, 0.75)
        if not tf_match:
            horizon = rng.choice(_HORIZONS)
        reasons.append("no RSI or trend reading in the prompt; seeded sandbox vote")

    if price is not None and price > 0:
        down, up = round(price * 0.98, 8), round(price * 1.04, 8)
        if action == "sell":
            down, up = round(price * 1.02, 8), round(price * 0.96, 8)
        elif action == "hold":
            up = round(price * 1.02, 8)
        stop_loss, take_profit = down, up
        reasons.append(f"price {price:g}")
    else:
        stop_loss, take_profit = 2.0, 4.0
    return Vote(
        action=action,
        probability=round(probability, 2),
        horizon=horizon,
        stop_loss=stop_loss,
        take_profit=take_profit,
        rationale=_sentence("; ".join(reasons)),
        price=price,
    )


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _suggester(vote: Vote) -> Any:
    def suggest(name: str, schema: Schema) -> Any:
        key = _key(name)
        if "horizon" in key or key in ("timeframe", "time_frame", "holding_period"):
            return _horizon_for(vote.horizon, key, schema)
        for field, aliases in _ALIASES.items():
            if key in aliases:
                if field == "action":
                    return _action_for(vote.action, schema)
                if field == "probability":
                    maximum = schema.get("maximum")
                    scale = 100 if isinstance(maximum, int | float) and maximum > 1 else 1
                    return round(vote.probability * scale, 2)
                return getattr(vote, field)
        return None

    return suggest


def _action_for(action: str, schema: Schema) -> Any:
    enum = schema.get("enum")
    if not enum:
        return action
    lowered = {str(member).lower(): member for member in enum}
    for synonym in _ACTION_SYNONYMS[action]:
        if synonym in lowered:
            return lowered[synonym]
    return None


def _horizon_for(horizon: str, key: str, schema: Schema) -> Any:
    wanted = hours(horizon) or 4.0
    enum = schema.get("enum")
    if enum:
        timed = [(abs((hours(str(m)) or 1e9) - wanted), i) for i, m in enumerate(enum)]
        best = min(timed)
        return enum[best[1]] if best[0] < 1e8 else enum[min(1, len(enum) - 1)]
    types = schema.get("type")
    type_list = types if isinstance(types, list) else [types]
    if "integer" in type_list or "number" in type_list:
        if "minute" in key:
            value = wanted * 60
        elif "day" in key:
            value = wanted / 24
        else:
            value = wanted
        return round(value) if "integer" in type_list else round(value, 4)
    return horizon


def vote_for_schema(vote: Vote, schema: Schema | None) -> Any:
    """The vote shaped to ``schema`` (the vote's own fields when there is none)."""
    if schema is None:
        return vote.to_json()
    return generate(schema, _suggester(vote))


def broken_for_schema(vote: Vote, schema: Schema | None) -> Any:
    """A JSON value that looks like an answer but does not follow ``schema``."""
    target = schema or VOTE_SCHEMA
    return violate(target, vote_for_schema(vote, target))


def invalid_json(vote: Vote, schema: Schema | None) -> str:
    """Text that starts like the JSON answer and breaks off: no JSON parser accepts it."""
    full = json.dumps(vote_for_schema(vote, schema))
    return "Sure! Here is my vote: " + full[: max(len(full) // 2, 2)]


def prose(vote: Vote) -> str:
    """A plain-text answer, for requests that ask for no particular format."""
    if vote.price is not None:
        levels = f" Stop loss {vote.stop_loss:g}, take profit {vote.take_profit:g}."
    else:
        levels = f" Stop loss {vote.stop_loss:g} % away, take profit {vote.take_profit:g} % away."
    return (
        f"{vote.action.upper()} with probability {vote.probability:.2f} over {vote.horizon}.{levels} "
        f"{vote.rationale}"
    )
