"""Consensus settings: the LLM voters (``LLM_VOTERS``), the provider keys that enable the default voters,
and the ``CONSENSUS__*`` group (quorum, deadline, weights, budgets, resolution).

``LLM_VOTERS`` is a JSON list of objects with the keys ``model`` (a litellm model string, e.g.
``gpt-4o-mini``, ``anthropic/claude-haiku-4-5``, ``gemini/gemini-2.5-flash``), ``api_base``, ``api_key``,
``timeout`` (seconds) and ``weight`` (the prior weight; optional ``name``: the voter's name in the records).
When it is empty, one default voter is added for each provider key that is set: ``OPENAI_API_KEY`` ->
``gpt-4o-mini``, ``ANTHROPIC_API_KEY`` -> ``anthropic/claude-haiku-4-5``, ``GEMINI_API_KEY`` ->
``gemini/gemini-2.5-flash``. A listed voter without an ``api_key`` gets its provider's key. With no LLM
voter at all the consensus is made by the technical-analysis voters alone.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, field_validator

TA_VOTER_NAMES = ("trend", "momentum", "mean_reversion")
DEFAULT_MODELS: dict[str, str] = {
    "openai": "gpt-4o-mini",
    "anthropic": "anthropic/claude-haiku-4-5",
    "gemini": "gemini/gemini-2.5-flash",
}
PROVIDER_KEY_VARIABLES: dict[str, str] = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
}
DEFAULT_DAILY_BUDGET_USD: dict[str, Decimal] = {
    "free": Decimal("0.05"),
    "basic": Decimal("0.50"),
    "pro": Decimal("2.00"),
    "enterprise": Decimal("10.00"),
}


class LLMVoterConfig(BaseModel):
    """One LLM voter: a litellm model string and how to reach it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(min_length=1, max_length=128)
    api_base: str | None = None
    api_key: SecretStr | None = None
    timeout: float = Field(default=20.0, gt=0)
    weight: float = Field(default=1.0, gt=0)
    name: str | None = Field(default=None, max_length=64)

    @property
    def voter_name(self) -> str:
        return (self.name or self.model)[:64]

    @property
    def provider(self) -> str:
        return provider_of(self.model)


def provider_of(model: str) -> str:
    """The litellm provider of a model string: its prefix (``anthropic/...``), else guessed from the name."""
    if "/" in model:
        return model.split("/", 1)[0].lower()
    lowered = model.lower()
    if lowered.startswith("claude"):
        return "anthropic"
    if lowered.startswith("gemini"):
        return "gemini"
    return "openai"


class ConsensusSettings(BaseModel):
    """The ``consensus`` settings group: ``CONSENSUS__QUORUM=2``, ``CONSENSUS__DAILY_BUDGET_USD={...}``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    quorum: int = Field(default=2, ge=1)  # valid votes needed for a buy or sell verdict
    deadline_seconds: float = Field(default=30.0, gt=0)  # for all voters together
    verdict_threshold: float = Field(default=0.25, gt=0, lt=1)  # |weighted score| for buy / sell
    shrinkage_signals: int = Field(default=30, ge=1)  # n0: resolved signals at which record = prior
    ta_voters: str = ",".join(TA_VOTER_NAMES)  # comma separated; empty: no TA voter
    ta_weight: float = Field(default=1.0, gt=0)  # prior weight of each TA voter
    ta_timeout: float = Field(default=5.0, gt=0)
    llm_max_tokens: int = Field(default=400, gt=0)
    llm_temperature: float = Field(default=0.2, ge=0)
    # Daily LLM spend per user by plan code (USD); a plan not listed uses "free". Once a user's spend
    # today reaches it, their signals are made by the TA voters alone.
    daily_budget_usd: dict[str, Decimal] = Field(default_factory=lambda: dict(DEFAULT_DAILY_BUDGET_USD))
    global_daily_budget_usd: Decimal | None = None  # all users together; None: no global limit
    # One snapshot (and so one prompt) per symbol and candle, for at most this long on long timeframes.
    snapshot_max_age_seconds: int = Field(default=3600, gt=0)
    resolve_interval_seconds: float = Field(default=300.0, gt=0)
    resolve_batch: int = Field(default=200, gt=0)

    @property
    def ta_voter_names(self) -> tuple[str, ...]:
        return tuple(name.strip() for name in self.ta_voters.split(",") if name.strip())

    @field_validator("ta_voters")
    @classmethod
    def _known_ta_voters(cls, value: str) -> str:
        unknown = [n.strip() for n in value.split(",") if n.strip() and n.strip() not in TA_VOTER_NAMES]
        if unknown:
            raise ValueError(f"unknown TA voters {unknown}; known: {', '.join(TA_VOTER_NAMES)}")
        return value

    def budget_for(self, plan: str) -> Decimal:
        return self.daily_budget_usd.get(plan, self.daily_budget_usd.get("free", Decimal(0)))


_VOTER_LIST = TypeAdapter(list[LLMVoterConfig])


def parse_llm_voters(raw: str | list[Any] | None) -> list[LLMVoterConfig]:
    """``LLM_VOTERS`` as JSON text (or already decoded); empty or blank means none."""
    if raw is None:
        return []
    if isinstance(raw, str):
        if not raw.strip():
            return []
        raw = json.loads(raw)
    return _VOTER_LIST.validate_python(raw)


def resolve_llm_voters(
    configured: list[LLMVoterConfig] | None,
    *,
    openai_api_key: SecretStr | None = None,
    anthropic_api_key: SecretStr | None = None,
    gemini_api_key: SecretStr | None = None,
) -> list[LLMVoterConfig]:
    """The LLM voters to run: the configured list (each without a key given its provider's key), or the
    default voter of each provider whose key is set."""
    keys = {"openai": openai_api_key, "anthropic": anthropic_api_key, "gemini": gemini_api_key}
    if configured:
        return [
            voter
            if voter.api_key is not None or keys.get(voter.provider) is None
            else voter.model_copy(update={"api_key": keys[voter.provider]})
            for voter in configured
        ]
    return [
        LLMVoterConfig(model=DEFAULT_MODELS[provider], api_key=key)
        for provider, key in keys.items()
        if key is not None and key.get_secret_value()
    ]


__all__ = [
    "DEFAULT_MODELS",
    "PROVIDER_KEY_VARIABLES",
    "TA_VOTER_NAMES",
    "ConsensusSettings",
    "LLMVoterConfig",
    "parse_llm_voters",
    "provider_of",
    "resolve_llm_voters",
]
