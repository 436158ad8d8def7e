"""Voters: each looks at one snapshot and returns a `Vote` (or an abstention, which never counts).

Technical-analysis voters need no key and are deterministic functions of the snapshot:

* ``ta.trend``: the trend component of the opportunity score (EMA 20/50/200 alignment scaled by ADX);
* ``ta.momentum``: the momentum component (RSI and MACD histogram against ATR);
* ``ta.mean_reversion``: how far the close is stretched from the Bollinger middle band (in half-band
  widths) and RSI from 50 (in 25-point units), averaged and turned around: stretched up votes sell.

Each yields a strength x in [-1, 1]; at or beyond its threshold (0.25 for trend and momentum, 0.6 for mean
reversion) it votes buy (x > 0) or sell with probability 0.5 + 0.35 |x|, otherwise hold with 0.5. Stop
loss and take profit are 1.5 and 3 ATR from the price (none for hold). Missing indicators: abstention.

LLM voters ask a model through litellm for a JSON object (`VOTE_SCHEMA`, sent as a strict JSON schema
where the model supports structured output, as JSON mode otherwise) and validate every answer
(`VoteAnswer`): a wrong type, a probability outside 0..1, a rationale over 200 characters, or a stop loss
or take profit on the wrong side of the price makes the vote an abstention, as do errors and timeouts.
Valid answers are cached per model and prompt until the snapshot's candle is over; a cache hit costs 0.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, ClassVar, Literal, Protocol, cast

# Costs come from the price map bundled with the installed litellm (reproducible, and no download from
# GitHub at import); set LITELLM_LOCAL_MODEL_COST_MAP=False to have litellm fetch the latest one.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS", "True")

import litellm
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator

from services.consensus.cache import AnswerCache, KeyedLocks, cache_key
from services.consensus.config import LLMVoterConfig
from services.consensus.snapshot import HORIZON_MINUTES, Snapshot

litellm.suppress_debug_info = True  # no help banners on stdout: failures are abstentions, logged as such

Action = Literal["buy", "sell", "hold"]
VoterKind = Literal["llm", "ta"]

# Abstention reasons (each is a locale key suffix: consensus.abstain.<reason>).
TIMEOUT = "timeout"
DEADLINE = "deadline"
ERROR = "error"
INVALID_JSON = "invalid_json"
INVALID_ANSWER = "invalid_answer"
NO_DATA = "no_data"
BUDGET = "budget"
ABSTAIN_REASONS = (TIMEOUT, DEADLINE, ERROR, INVALID_JSON, INVALID_ANSWER, NO_DATA, BUDGET)
RATIONALE_MAX = 200
PROMPT_VERSION = "v1"
COST_QUANTUM = Decimal("1e-12")  # USD


@dataclass(frozen=True, slots=True)
class Vote:
    voter: str
    kind: VoterKind
    action: Action | None = None
    probability: float | None = None  # that the price moves the way of the action over the horizon
    horizon: str | None = None
    stop_loss: float | None = None
    take_profit: float | None = None
    rationale: str | None = None
    abstain_reason: str | None = None
    error: str | None = None
    latency_ms: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: Decimal = Decimal(0)  # USD
    cache_hit: bool = False

    @property
    def valid(self) -> bool:
        return self.abstain_reason is None and self.action is not None and self.probability is not None

    @property
    def signed(self) -> float:
        """+p for buy, -p for sell, 0 for hold (and for an abstention, which is never aggregated)."""
        if not self.valid or self.probability is None:
            return 0.0
        return {"buy": self.probability, "sell": -self.probability}.get(self.action or "", 0.0)

    @property
    def p_up(self) -> float:
        """The probability of a rise the vote implies: p for buy, 1 - p for sell, 0.5 for hold."""
        p = self.probability if self.probability is not None else 0.5
        return {"buy": p, "sell": 1.0 - p}.get(self.action or "", 0.5)

    @classmethod
    def abstain(
        cls, voter: str, kind: VoterKind, reason: str, error: str | None = None, **metrics: Any
    ) -> Vote:
        return cls(
            voter=voter, kind=kind, abstain_reason=reason, error=error[:255] if error else None, **metrics
        )


class Voter(Protocol):
    name: str
    kind: VoterKind
    prior_weight: float
    timeout: float

    async def vote(self, snapshot: Snapshot) -> Vote: ...


# ---------------------------------------------------------------------------------------- TA voters


def _clamp(value: float, low: float = -1.0, high: float = 1.0) -> float:
    return min(max(value, low), high)


class TAVoter(ABC):
    """A rule over the snapshot's indicators; `strength` returns x in [-1, 1] or None without data."""

    kind: VoterKind = "ta"
    key: ClassVar[str] = ""
    threshold: ClassVar[float] = 0.25

    def __init__(self, *, prior_weight: float = 1.0, timeout: float = 5.0) -> None:
        self.name = f"ta.{self.key}"
        self.prior_weight = prior_weight
        self.timeout = timeout

    @abstractmethod
    def strength(self, snapshot: Snapshot) -> float | None:
        """x in [-1, 1] (sell to buy), or None when the snapshot lacks the indicators."""

    def decide(self, snapshot: Snapshot) -> Vote:
        x = self.strength(snapshot)
        if x is None:
            return Vote.abstain(self.name, "ta", NO_DATA)
        x = _clamp(x)
        atr = snapshot.indicators.get("atr")
        price = snapshot.price
        if abs(x) < self.threshold:
            return Vote(self.name, "ta", "hold", 0.5, snapshot.horizon, rationale=self.rationale(snapshot, x))
        action: Action = "buy" if x > 0 else "sell"
        stop = take = None
        if atr is not None and atr > 0:
            direction = 1 if action == "buy" else -1
            stop = _round_price(price - direction * 1.5 * atr)
            take = _round_price(price + direction * 3.0 * atr)
            if stop <= 0 or take <= 0:
                stop = take = None
        return Vote(
            self.name,
            "ta",
            action,
            round(0.5 + 0.35 * abs(x), 4),
            snapshot.horizon,
            stop_loss=stop,
            take_profit=take,
            rationale=self.rationale(snapshot, x),
        )

    def rationale(self, snapshot: Snapshot, x: float) -> str:
        return f"{self.key} strength {x:+.2f}"

    async def vote(self, snapshot: Snapshot) -> Vote:
        started = time.perf_counter()
        vote = self.decide(snapshot)
        return replace(vote, latency_ms=int((time.perf_counter() - started) * 1000))


def _round_price(value: float) -> float:
    return float(f"{value:.8g}")


class TrendVoter(TAVoter):
    key = "trend"

    def strength(self, snapshot: Snapshot) -> float | None:
        if snapshot.indicators.get("ema20") is None:
            return None
        return snapshot.components["trend"]

    def rationale(self, snapshot: Snapshot, x: float) -> str:
        adx = snapshot.indicators.get("adx")
        return f"EMA alignment {snapshot.summary['trend']}, ADX {'n/a' if adx is None else f'{adx:.1f}'}"


class MomentumVoter(TAVoter):
    key = "momentum"

    def strength(self, snapshot: Snapshot) -> float | None:
        if snapshot.indicators.get("rsi") is None and snapshot.indicators.get("macd_hist") is None:
            return None
        return snapshot.components["momentum"]

    def rationale(self, snapshot: Snapshot, x: float) -> str:
        rsi = snapshot.indicators.get("rsi")
        return f"momentum {snapshot.summary['momentum']}, RSI {'n/a' if rsi is None else f'{rsi:.1f}'}"


class MeanReversionVoter(TAVoter):
    key = "mean_reversion"
    threshold = 0.6

    def strength(self, snapshot: Snapshot) -> float | None:
        ind = snapshot.indicators
        upper, middle, rsi = ind.get("bb_upper"), ind.get("bb_middle"), ind.get("rsi")
        terms: list[float] = []
        if upper is not None and middle is not None and upper > middle:
            terms.append(_clamp((snapshot.price - middle) / (upper - middle)))
        if rsi is not None:
            terms.append(_clamp((rsi - 50.0) / 25.0))
        if not terms:
            return None
        return -sum(terms) / len(terms)

    def rationale(self, snapshot: Snapshot, x: float) -> str:
        side = "stretched down" if x > 0 else "stretched up" if x < 0 else "at its mean"
        return f"price {side} against the Bollinger middle band and RSI 50"


TA_VOTERS: dict[str, type[TAVoter]] = {
    "trend": TrendVoter,
    "momentum": MomentumVoter,
    "mean_reversion": MeanReversionVoter,
}


def ta_voters(names: tuple[str, ...], *, prior_weight: float = 1.0, timeout: float = 5.0) -> list[Voter]:
    return [TA_VOTERS[name](prior_weight=prior_weight, timeout=timeout) for name in names]


# ---------------------------------------------------------------------------------------- LLM voters

VOTE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "action": {"type": "string", "enum": ["buy", "sell", "hold"]},
        "probability": {"type": "number"},
        "horizon": {"type": "string", "enum": list(HORIZON_MINUTES)},
        "stop_loss": {"type": ["number", "null"]},
        "take_profit": {"type": ["number", "null"]},
        "rationale": {"type": "string"},
    },
    "required": ["action", "probability", "horizon", "stop_loss", "take_profit", "rationale"],
    "additionalProperties": False,
}
RESPONSE_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {"name": "trade_vote", "strict": True, "schema": VOTE_SCHEMA},
}
SYSTEM_PROMPT = (
    "You are one voter on a panel of crypto market analysts. Read the market snapshot and vote on the "
    "trade for the given horizon. Reply with one JSON object and nothing else, with exactly these keys: "
    '"action": "buy", "sell" or "hold"; '
    '"probability": your probability (0 to 1) that the price moves the way of your action over the horizon '
    "(for hold: that it stays roughly where it is); "
    '"horizon": one of ' + ", ".join(f'"{h}"' for h in HORIZON_MINUTES) + "; "
    '"stop_loss" and "take_profit": price levels (for buy the stop below the current price and the target '
    "above it, for sell the reverse) or null for hold; "
    f'"rationale": one line of at most {RATIONALE_MAX} characters.'
)


class VoteAnswer(BaseModel):
    """A model's answer; validated with the snapshot's price as context (``{"price": ...}``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    action: Action
    probability: float = Field(ge=0.0, le=1.0)
    horizon: str = Field(pattern=r"^\d{1,3}[mhdw]$")
    stop_loss: float | None = Field(default=..., gt=0)
    take_profit: float | None = Field(default=..., gt=0)
    rationale: str = Field(min_length=1, max_length=RATIONALE_MAX)

    @model_validator(mode="after")
    def _levels_on_the_right_side(self, info: ValidationInfo) -> VoteAnswer:
        price = (info.context or {}).get("price")
        if price is None or self.action == "hold":
            return self
        below, above = (self.stop_loss, self.take_profit)
        if self.action == "sell":
            below, above = above, below
        if below is not None and not below < price:
            raise ValueError(
                f"{self.action}: {'stop loss' if self.action == 'buy' else 'take profit'} "
                f"must be below the price {price:g}"
            )
        if above is not None and not above > price:
            raise ValueError(
                f"{self.action}: {'take profit' if self.action == 'buy' else 'stop loss'} "
                f"must be above the price {price:g}"
            )
        return self


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S)


class InvalidAnswer(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def parse_answer(content: str | None, price: float) -> VoteAnswer:
    """The vote in a model's reply, or `InvalidAnswer` (reason ``invalid_json`` or ``invalid_answer``)."""
    if not content or not content.strip():
        raise InvalidAnswer(INVALID_JSON, "empty reply")
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidAnswer(INVALID_JSON, f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidAnswer(INVALID_JSON, "not a JSON object")
    try:
        return VoteAnswer.model_validate(data, context={"price": price})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in exc.errors())
        raise InvalidAnswer(INVALID_ANSWER, problems) from None


def _supports_schema(model: str) -> bool:
    try:
        return bool(litellm.supports_response_schema(model=model))
    except Exception:
        return False


def _error_text(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None)
    name = type(exc).__name__
    return f"{name} (HTTP {status})" if status else name


def _usage(response: Any) -> tuple[int, int]:
    usage = getattr(response, "usage", None)
    if usage is None:
        return 0, 0
    return int(getattr(usage, "prompt_tokens", 0) or 0), int(getattr(usage, "completion_tokens", 0) or 0)


def _cost(response: Any) -> Decimal:
    hidden = cast(dict[str, Any], getattr(response, "_hidden_params", None) or {})
    value = hidden.get("response_cost")
    if value is None:
        try:
            value = litellm.completion_cost(completion_response=response)
        except Exception:
            value = 0.0
    try:
        cost = Decimal(str(float(value)))
    except (TypeError, ValueError):
        return Decimal(0)
    if not cost.is_finite() or cost < 0:
        return Decimal(0)
    return cost.quantize(COST_QUANTUM)


def _content(response: Any) -> str | None:
    choices = getattr(response, "choices", None) or []
    if not choices:
        return None
    message = getattr(choices[0], "message", None)
    content = getattr(message, "content", None)
    return content if isinstance(content, str) else None


class LLMVoter:
    kind: VoterKind = "llm"

    def __init__(
        self,
        config: LLMVoterConfig,
        *,
        cache: AnswerCache | None = None,
        max_tokens: int = 400,
        temperature: float = 0.2,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.name = config.voter_name
        self.prior_weight = config.weight
        self.timeout = config.timeout
        self.cache = cache
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.clock = clock
        self.structured = _supports_schema(config.model)
        self._locks = KeyedLocks()

    def messages(self, snapshot: Snapshot) -> list[dict[str, str]]:
        return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": snapshot.prompt}]

    def cache_key(self, snapshot: Snapshot) -> str:
        return cache_key(
            "llm", PROMPT_VERSION, self.config.model, self.config.api_base or "", snapshot.prompt
        )

    async def vote(self, snapshot: Snapshot) -> Vote:
        if self.cache is None:
            return await self._ask(snapshot, None)
        key = self.cache_key(snapshot)
        async with self._locks.hold(key):
            started = time.perf_counter()
            cached = await self.cache.get(key)
            if cached is not None:
                try:
                    answer = VoteAnswer.model_validate_json(cached, context={"price": snapshot.price})
                except ValidationError:
                    pass
                else:
                    latency = int((time.perf_counter() - started) * 1000)
                    return self._vote(answer, latency_ms=latency, cache_hit=True)
            return await self._ask(snapshot, key)

    def _vote(self, answer: VoteAnswer, **metrics: Any) -> Vote:
        return Vote(
            self.name,
            "llm",
            answer.action,
            answer.probability,
            answer.horizon,
            stop_loss=answer.stop_loss,
            take_profit=answer.take_profit,
            rationale=answer.rationale,
            **metrics,
        )

    def _request(self, snapshot: Snapshot) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.config.model,
            "messages": self.messages(snapshot),
            "timeout": self.config.timeout,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "response_format": RESPONSE_FORMAT if self.structured else {"type": "json_object"},
            "num_retries": 0,
            "max_retries": 0,
            "drop_params": True,
        }
        if self.config.api_base:
            kwargs["api_base"] = self.config.api_base
        if self.config.api_key is not None:
            kwargs["api_key"] = self.config.api_key.get_secret_value()
        return kwargs

    async def _ask(self, snapshot: Snapshot, key: str | None) -> Vote:
        started = time.perf_counter()
        try:
            response = await litellm.acompletion(**self._request(snapshot))
        except (TimeoutError, litellm.Timeout) as exc:
            latency = int((time.perf_counter() - started) * 1000)
            return Vote.abstain(self.name, "llm", TIMEOUT, _error_text(exc), latency_ms=latency)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            latency = int((time.perf_counter() - started) * 1000)
            return Vote.abstain(self.name, "llm", ERROR, _error_text(exc), latency_ms=latency)
        latency = int((time.perf_counter() - started) * 1000)
        tokens_in, tokens_out = _usage(response)
        metrics: dict[str, Any] = {
            "latency_ms": latency,
            "tokens_in": tokens_in,
            "tokens_out": tokens_out,
            "cost": _cost(response),
        }
        try:
            answer = parse_answer(_content(response), snapshot.price)
        except InvalidAnswer as exc:
            return Vote.abstain(self.name, "llm", exc.reason, exc.detail, **metrics)
        if key is not None and self.cache is not None:
            ttl = snapshot_ttl(snapshot, self.clock())
            await self.cache.set(key, answer.model_dump_json(), ttl)
        return self._vote(answer, **metrics)


def snapshot_ttl(snapshot: Snapshot, now: float) -> float:
    """Seconds until the snapshot (and with it the prompt) is replaced by the next one."""
    return max(snapshot.valid_until_ms / 1000 - now, 0.0)


__all__ = [
    "ABSTAIN_REASONS",
    "RESPONSE_FORMAT",
    "SYSTEM_PROMPT",
    "TA_VOTERS",
    "VOTE_SCHEMA",
    "Action",
    "InvalidAnswer",
    "LLMVoter",
    "MeanReversionVoter",
    "MomentumVoter",
    "TAVoter",
    "TrendVoter",
    "Vote",
    "VoteAnswer",
    "Voter",
    "VoterKind",
    "parse_answer",
    "snapshot_ttl",
    "ta_voters",
]
