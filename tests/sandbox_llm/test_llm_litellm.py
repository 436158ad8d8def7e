"""The real litellm client against the sandbox, for OpenAI, Anthropic and Gemini models."""

from __future__ import annotations

import json
import time
from typing import Any

import jsonschema
import litellm
import pytest

from sandbox.llm import LLMServer
from tests.sandbox_llm.llm_support import (
    ALL,
    CLAUDE,
    CLAUDE_TOOL,
    GEMINI,
    GEMINI_PROMPTED,
    OPENAI,
    PRICED,
    VOTE_SCHEMA,
    Target,
    ask,
    content,
)

by_name = pytest.mark.parametrize("target", ALL, ids=lambda t: t.name)


@by_name
async def test_schema_constrained_vote_comes_back_valid(llm: LLMServer, target: Target) -> None:
    response = await ask(llm, target)

    vote = json.loads(content(response))
    jsonschema.validate(vote, VOTE_SCHEMA)
    assert vote["action"] == "buy"  # RSI 24.5 oversold, uptrend, golden cross
    assert vote["horizon"] == "1h"
    assert (vote["stop_loss"], vote["take_profit"]) == (63700.0, 67600.0)
    assert "oversold" in vote["rationale"]
    assert response.model is not None and target.name in response.model


@by_name
async def test_bearish_prompt_gets_a_sell_vote(llm: LLMServer, target: Target) -> None:
    response = await ask(llm, target, "ETH/USDT 4h. Close: 3,200. RSI 78, bearish divergence, downtrend.")
    vote = json.loads(content(response))
    jsonschema.validate(vote, VOTE_SCHEMA)
    assert vote["action"] == "sell"
    assert vote["probability"] == 0.87  # RSI 78 (-2), bearish (-1), downtrend (-1)
    assert vote["stop_loss"] > 3200 > vote["take_profit"]


async def test_prompt_without_signals_gets_a_seeded_vote_that_differs_by_model(llm: LLMServer) -> None:
    prompt = "What do you think about SOL right now?"
    first = [json.loads(content(await ask(llm, t, prompt))) for t in (OPENAI, CLAUDE, GEMINI)]
    again = [json.loads(content(await ask(llm, t, prompt))) for t in (OPENAI, CLAUDE, GEMINI)]
    assert first == again
    for vote in first:
        jsonschema.validate(vote, VOTE_SCHEMA)
        assert 0.5 <= vote["probability"] <= 0.75
        assert "seeded" in vote["rationale"]
    assert len({json.dumps(v, sort_keys=True) for v in first}) > 1


@pytest.mark.parametrize("target", PRICED, ids=lambda t: t.name)
async def test_usage_and_a_positive_cost(llm: LLMServer, target: Target) -> None:
    response = await ask(llm, target)

    usage: Any = response.get("usage")
    assert usage.prompt_tokens > 20 and usage.completion_tokens > 10
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    cost = litellm.completion_cost(completion_response=response)
    assert cost > 0
    assert response._hidden_params["response_cost"] == pytest.approx(cost)
    record = llm.requests[-1]
    assert (record.prompt_tokens, record.completion_tokens) == (usage.prompt_tokens, usage.completion_tokens)


@by_name
async def test_request_log_shows_what_the_client_sent(llm: LLMServer, target: Target) -> None:
    await ask(llm, target)

    [record] = llm.requests_for(target.model)
    assert record.provider == target.provider and record.status == 200
    assert record.response_format is not None and target.constraint in record.response_format
    assert record.messages[-1] == {"role": "user", "content": record.messages[-1]["content"]}
    assert "RSI(14): 24.5" in record.messages[-1]["content"]
    assert record.schema is not None and set(record.schema["properties"]) == set(VOTE_SCHEMA["properties"])
    assert record.latency is not None and record.latency < 1
    assert "<redacted>" in json.dumps(record.headers)
    assert llm.api_key(target.provider) not in json.dumps(record.to_json())


async def test_structured_output_wire_formats_per_provider(llm: LLMServer) -> None:
    for target in ALL:
        await ask(llm, target)
    sent = {r.model: r.response_format or {} for r in llm.requests}

    assert sent["gpt-4o-mini"]["response_format"]["json_schema"]["strict"] is True
    assert sent["claude-haiku-4-5"]["output_format"]["type"] == "json_schema"
    assert llm.requests_for(CLAUDE.model)[0].headers["anthropic-beta"].startswith("structured-outputs")
    tool_sent = sent["claude-3-5-haiku-20241022"]
    assert tool_sent["tool_choice"] == {"name": "json_tool_call", "type": "tool"}
    assert tool_sent["tools"][0]["input_schema"]["required"] == VOTE_SCHEMA["required"]
    assert llm.requests_for(CLAUDE_TOOL.model)[0].output_kind == "tool"
    assert sent["gemini-2.5-flash"]["response_mime_type"] == "application/json"
    assert "response_json_schema" in sent["gemini-2.5-flash"]
    assert sent["gemini-1.5-flash"] == {"response_mime_type": "application/json"}
    assert "Use this JSON schema" in llm.requests_for(GEMINI_PROMPTED.model)[0].messages[-1]["content"]


@by_name
async def test_wrong_key_is_an_authentication_error(llm: LLMServer, target: Target) -> None:
    with pytest.raises(litellm.AuthenticationError):
        await ask(llm, target, api_key="wrong-key-123456")
    assert llm.requests[-1].status in (400, 401)


@pytest.mark.parametrize("target", PRICED, ids=lambda t: t.name)
async def test_scripted_401_is_an_authentication_error(llm: LLMServer, target: Target) -> None:
    llm.set_error(target.model, 401, times=1)
    with pytest.raises(litellm.AuthenticationError):
        await ask(llm, target)
    json.loads(content(await ask(llm, target)))


@by_name
async def test_429_is_a_rate_limit_error_with_retry_after(llm: LLMServer, target: Target) -> None:
    llm.set_error(target.model, 429, retry_after=7)
    started = time.monotonic()
    with pytest.raises(litellm.RateLimitError) as caught:
        await ask(llm, target)
    assert time.monotonic() - started < 2
    headers = getattr(caught.value, "litellm_response_headers", None)
    assert headers is not None and headers.get("retry-after") == "7"
    assert len(llm.requests_for(target.model)) == 1


@pytest.mark.parametrize("target", PRICED, ids=lambda t: t.name)
async def test_failures_before_success(llm: LLMServer, target: Target) -> None:
    llm.set_error(target.model, 500, times=2)
    for _ in range(2):
        with pytest.raises((litellm.InternalServerError, litellm.APIError)):
            await ask(llm, target)
    jsonschema.validate(json.loads(content(await ask(llm, target))), VOTE_SCHEMA)
    assert [r.status for r in llm.requests_for(target.model)] == [500, 500, 200]


@by_name
async def test_delay_beyond_the_timeout_raises_a_timeout(llm: LLMServer, target: Target) -> None:
    llm.set_delay(target.model, 3.0)
    started = time.monotonic()
    with pytest.raises(litellm.Timeout):
        await ask(llm, target, timeout=0.3)
    assert time.monotonic() - started < 2


async def test_delay_within_the_timeout_only_slows_the_answer(llm: LLMServer) -> None:
    llm.set_delay(OPENAI.model, 0.2)
    started = time.monotonic()
    json.loads(content(await ask(llm, OPENAI, timeout=3)))
    assert time.monotonic() - started >= 0.2
    assert (llm.requests[-1].latency or 0) >= 0.2


@by_name
async def test_invalid_json_comes_back_as_text(llm: LLMServer, target: Target) -> None:
    llm.set_invalid_json(target.model, times=1)
    text = content(await ask(llm, target))
    assert text.startswith("Sure! Here is my vote: {")
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    jsonschema.validate(json.loads(content(await ask(llm, target))), VOTE_SCHEMA)


@by_name
async def test_schema_violation_comes_back_as_json_that_breaks_the_schema(
    llm: LLMServer, target: Target
) -> None:
    llm.set_schema_violation(target.model)
    vote = json.loads(content(await ask(llm, target)))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(vote, VOTE_SCHEMA)
    assert vote["action"] == "not-buy"


@by_name
async def test_fixed_answer(llm: LLMServer, target: Target) -> None:
    fixed = {
        "action": "hold",
        "probability": 0.42,
        "horizon": "1d",
        "stop_loss": None,
        "take_profit": None,
        "rationale": "scripted",
    }
    llm.set_answer(target.model, fixed)
    assert json.loads(content(await ask(llm, target))) == fixed
    llm.set_answer(target.model, "I would rather not say.")
    assert content(await ask(llm, target)) == "I would rather not say."


async def test_wildcard_script_applies_to_models_without_their_own(llm: LLMServer) -> None:
    llm.set_error("*", 503)
    llm.set_answer(GEMINI.model, {"action": "hold"})
    with pytest.raises(litellm.ServiceUnavailableError):
        await ask(llm, OPENAI)
    assert json.loads(content(await ask(llm, GEMINI))) == {"action": "hold"}
    llm.reset()
    json.loads(content(await ask(llm, OPENAI)))


async def test_plain_text_request_gets_prose(llm: LLMServer) -> None:
    response = await litellm.acompletion(
        model=OPENAI.model,
        messages=[{"role": "user", "content": "RSI 80, bearish. Your view?"}],
        num_retries=0,
        max_retries=0,
        **llm.client_kwargs("openai"),
    )
    text = content(response)
    assert text.startswith("SELL with probability 0.79 over 4h. Stop loss 2 % away, take profit 4 % away.")
    assert "RSI 80 is overbought" in text


async def test_max_tokens_truncates_the_answer(llm: LLMServer) -> None:
    response = await ask(llm, OPENAI, max_tokens=10)
    text = content(response)
    assert response.choices[0].finish_reason == "length"
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    assert llm.requests[-1].completion_tokens == 10
