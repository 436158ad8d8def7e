"""The vote brain and the JSON Schema helpers, checked against the jsonschema library."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from sandbox.llm import VOTE_SCHEMA, derive_vote, generate, is_valid, validate, violate
from sandbox.llm.brain import broken_for_schema, invalid_json, vote_for_schema
from sandbox.llm.schema import strict_schema_problems
from sandbox.llm.tokens import count_tokens, truncate_to_tokens
from tests.sandbox_llm.llm_support import VOTE_SCHEMA as BOT_SCHEMA


@pytest.mark.parametrize(
    ("prompt", "action", "probability"),
    [
        ("RSI(14): 24.5", "buy", 0.71),
        ("rsi14=30 and a golden cross", "buy", 0.79),
        ("RSI 78, bearish", "sell", 0.79),
        ("RSI is 55", "hold", 0.5),
        ("Market is sideways, RSI 50", "hold", 0.55),
        ("bullish, but a bearish divergence", "hold", 0.5),
        ("trend: down", "sell", 0.63),
    ],
)
def test_vote_rules(prompt: str, action: str, probability: float) -> None:
    vote = derive_vote(prompt)
    assert (vote.action, vote.probability) == (action, probability)


def test_levels_and_horizon_come_from_the_prompt() -> None:
    vote = derive_vote("BTC last $64,950.5, 15m candles, downtrend")
    assert vote.horizon == "15m" and vote.action == "sell"
    assert vote.stop_loss == pytest.approx(64950.5 * 1.02) and vote.take_profit == pytest.approx(
        64950.5 * 0.96
    )
    plain = derive_vote("uptrend")
    assert (plain.stop_loss, plain.take_profit, plain.horizon) == (2.0, 4.0, "4h")


def test_seeded_vote_is_stable_per_seed_and_model() -> None:
    assert derive_vote("hello", "a", 1) == derive_vote("hello", "a", 1)
    votes = {derive_vote("hello", model, seed).action for model in "abcdef" for seed in range(3)}
    assert votes == {"buy", "sell", "hold"}


SCHEMAS: list[dict[str, Any]] = [
    VOTE_SCHEMA,
    BOT_SCHEMA,
    {
        "type": "object",
        "properties": {
            "decision": {"type": "string", "enum": ["LONG", "SHORT", "NEUTRAL"]},
            "confidence": {"type": "integer", "minimum": 0, "maximum": 100},
            "horizon_hours": {"type": "integer", "exclusiveMinimum": 0},
            "targets": {"type": "array", "items": {"$ref": "#/$defs/level"}, "minItems": 2},
            "meta": {
                "anyOf": [{"type": "null"}, {"type": "object", "properties": {"id": {"type": "string"}}}]
            },
        },
        "required": ["decision", "confidence", "horizon_hours", "targets"],
        "additionalProperties": False,
        "$defs": {"level": {"type": "object", "properties": {"price": {"type": "number", "minimum": 1}}}},
    },
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_generated_answers_follow_the_schema_and_broken_ones_do_not(schema: dict[str, Any]) -> None:
    vote = derive_vote("RSI 25, uptrend, 1d chart, price 100")
    answer = vote_for_schema(vote, schema)
    jsonschema.validate(answer, schema)
    assert validate(answer, schema) == []
    broken = broken_for_schema(vote, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
    assert not is_valid(broken, schema)


def test_answers_are_mapped_onto_other_vocabularies() -> None:
    answer = vote_for_schema(derive_vote("RSI 25, uptrend, 1d chart"), SCHEMAS[2])
    assert answer["decision"] == "LONG" and answer["confidence"] == 79 and answer["horizon_hours"] == 24
    assert vote_for_schema(derive_vote("RSI 20", "m"), BOT_SCHEMA)["horizon"] == "4h"


def test_validator_agrees_with_jsonschema_on_typical_mistakes() -> None:
    good = {
        "action": "buy",
        "probability": 0.7,
        "horizon": "1h",
        "stop_loss": None,
        "take_profit": 1.0,
        "rationale": "",
    }
    for bad in (
        {**good, "action": "moon"},
        {**good, "probability": 1.5},
        {k: v for k, v in good.items() if k != "horizon"},
        {**good, "extra": 1},
        {**good, "stop_loss": "low"},
        [good],
    ):
        assert validate(bad, BOT_SCHEMA)
        assert not jsonschema.Draft202012Validator(BOT_SCHEMA).is_valid(bad)
    assert validate(good, BOT_SCHEMA) == []
    assert violate({"type": "object"}, {}) == ["not", "an", "object"]
    assert generate({"type": "string", "minLength": 3, "maxLength": 5}) in ("sampl", "sample"[:5])


def test_strict_mode_rules() -> None:
    assert strict_schema_problems(BOT_SCHEMA) == []
    loose = {"type": "object", "properties": {"a": {"type": "string"}}, "required": []}
    problems = strict_schema_problems(loose)
    assert any("additionalProperties" in p for p in problems) and any("Missing 'a'" in p for p in problems)
    assert strict_schema_problems({"type": "array"})


def test_invalid_json_and_tokens() -> None:
    text = invalid_json(derive_vote("RSI 20"), BOT_SCHEMA)
    with pytest.raises(ValueError):
        json.loads(text)
    assert count_tokens("Hello, world!") == 6 and count_tokens("cryptocurrency") == 4
    assert truncate_to_tokens("one two three four", 2) == "one two"
