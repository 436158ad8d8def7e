"""Wire shapes checked over plain HTTP: answers, errors and request validation of each provider."""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping
from typing import Any

import aiohttp
import pytest

from sandbox.llm import LLMServer
from tests.sandbox_llm.llm_support import RESPONSE_FORMAT, VOTE_SCHEMA

USER = {"role": "user", "content": "RSI 25, uptrend. Reply in JSON."}


async def post(
    url: str, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any], Mapping[str, str]]:
    async with aiohttp.ClientSession() as session, session.post(url, json=body, headers=headers) as response:
        return response.status, await response.json(), response.headers.copy()


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, await response.json()


def openai_headers(llm: LLMServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {llm.api_key('openai')}"}


def anthropic_headers(llm: LLMServer) -> dict[str, str]:
    return {"x-api-key": llm.api_key("anthropic"), "anthropic-version": "2023-06-01"}


async def test_openai_completion_shape(llm: LLMServer) -> None:
    body = {"model": "gpt-4o-mini", "messages": [USER], "response_format": RESPONSE_FORMAT, "n": 2}
    status, payload, headers = await post(llm.openai_base + "/chat/completions", body, openai_headers(llm))

    assert status == 200 and "x-request-id" in headers
    assert payload["object"] == "chat.completion" and payload["id"].startswith("chatcmpl-")
    assert payload["model"] == "gpt-4o-mini" and isinstance(payload["created"], int)
    assert [c["index"] for c in payload["choices"]] == [0, 1]
    choice = payload["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["message"]["role"] == "assistant"
    assert json.loads(choice["message"]["content"])["action"] == "buy"
    usage = payload["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_openai_errors_and_validation(llm: LLMServer) -> None:
    url = llm.base_url + "/chat/completions"
    status, payload, _ = await post(url, {"model": "gpt-4o-mini", "messages": [USER]})
    assert status == 401 and payload["error"]["type"] == "invalid_request_error"
    assert "didn't provide an API key" in payload["error"]["message"]

    status, payload, _ = await post(
        url, {"model": "gpt-4o-mini", "messages": [USER]}, {"Authorization": "Bearer sk-wrong-key-0000"}
    )
    assert status == 401 and payload["error"]["code"] == "invalid_api_key"
    assert "sk-****0000" in payload["error"]["message"]

    auth = openai_headers(llm)
    assert (await post(url, {"messages": [USER]}, auth))[1]["error"]["param"] == "model"
    status, payload, _ = await post(url, {"model": "m", "messages": []}, auth)
    assert status == 400 and payload["error"]["param"] == "messages"
    status, payload, _ = await post(
        url, {"model": "m", "messages": [{"role": "robot", "content": "x"}]}, auth
    )
    assert status == 400 and "messages[0].role" in payload["error"]["message"]

    no_json = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "response_format": {"type": "json_object"},
    }
    status, payload, _ = await post(url, no_json, auth)
    assert status == 400 and "must contain the word 'json'" in payload["error"]["message"]

    loose = {**VOTE_SCHEMA, "additionalProperties": True}
    not_strict = {"type": "json_schema", "json_schema": {"name": "vote", "schema": loose, "strict": True}}
    status, payload, _ = await post(
        url, {"model": "m", "messages": [USER], "response_format": not_strict}, auth
    )
    assert (
        status == 400
        and "'additionalProperties' is required to be supplied and to be false" in payload["error"]["message"]
    )

    async with aiohttp.ClientSession() as session, session.post(url, data=b"{oops", headers=auth) as response:
        assert response.status == 400 and (await response.json())["error"]["type"] == "invalid_request_error"


async def test_openai_forced_tool_call(llm: LLMServer) -> None:
    tool = {"type": "function", "function": {"name": "cast_vote", "parameters": VOTE_SCHEMA}}
    body = {
        "model": "gpt-4o-mini",
        "messages": [USER],
        "tools": [tool],
        "tool_choice": {"type": "function", "function": {"name": "cast_vote"}},
    }
    status, payload, _ = await post(llm.openai_base + "/chat/completions", body, openai_headers(llm))
    assert status == 200
    choice = payload["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    call = choice["message"]["tool_calls"][0]
    assert call["function"]["name"] == "cast_vote"
    assert json.loads(call["function"]["arguments"])["action"] == "buy"


async def test_models_listings(llm: LLMServer) -> None:
    status, payload = await get(llm.openai_base + "/models", openai_headers(llm))
    assert status == 200 and "gpt-4o-mini" in [m["id"] for m in payload["data"]]
    status, payload = await get(llm.base_url + "/v1/models", anthropic_headers(llm))
    assert status == 200 and payload["data"][0]["type"] == "model"
    status, payload = await get(llm.gemini_base + "/models?key=" + llm.api_key("gemini"))
    assert status == 200 and "models/gemini-2.5-flash" in [m["name"] for m in payload["models"]]
    assert (await get(llm.openai_base + "/models"))[0] == 401


async def test_anthropic_shape_errors_and_validation(llm: LLMServer) -> None:
    url = llm.anthropic_base + "/v1/messages"
    body = {"model": "claude-haiku-4-5", "max_tokens": 300, "messages": [USER], "system": "Vote."}
    status, payload, headers = await post(url, body, anthropic_headers(llm))
    assert status == 200 and headers["request-id"].startswith("req_")
    assert payload["type"] == "message" and payload["stop_reason"] == "end_turn"
    assert payload["content"][0]["type"] == "text"
    assert set(payload["usage"]) >= {"input_tokens", "output_tokens"}

    status, payload, _ = await post(url, body, {"anthropic-version": "2023-06-01"})
    assert status == 401 and payload["error"] == {
        "type": "authentication_error",
        "message": "x-api-key header is required",
    }
    status, payload, _ = await post(url, body, {"x-api-key": llm.api_key("anthropic")})
    assert status == 400 and payload["error"]["message"] == "anthropic-version: header is required"
    status, payload, _ = await post(url, {**body, "max_tokens": 0}, anthropic_headers(llm))
    assert status == 400 and payload["type"] == "error"
    no_max = {k: v for k, v in body.items() if k != "max_tokens"}
    assert (await post(url, no_max, anthropic_headers(llm)))[1]["error"][
        "message"
    ] == "max_tokens: Field required"

    llm.set_error("claude-haiku-4-5", 529, times=1)
    status, payload, _ = await post(url, body, anthropic_headers(llm))
    assert status == 529 and payload["error"]["type"] == "overloaded_error"


async def test_anthropic_forced_tool_and_count_tokens(llm: LLMServer) -> None:
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 400,
        "messages": [USER],
        "tools": [{"name": "cast_vote", "input_schema": VOTE_SCHEMA}],
        "tool_choice": {"type": "any"},
    }
    status, payload, _ = await post(llm.anthropic_base + "/v1/messages", body, anthropic_headers(llm))
    assert status == 200 and payload["stop_reason"] == "tool_use"
    block = payload["content"][0]
    assert block["type"] == "tool_use" and block["name"] == "cast_vote" and block["id"].startswith("toolu_")
    assert block["input"]["action"] == "buy"

    status, payload, _ = await post(
        llm.anthropic_base + "/v1/messages/count_tokens", body, anthropic_headers(llm)
    )
    assert status == 200 and payload["input_tokens"] > 10


async def test_gemini_shape_auth_and_validation(llm: LLMServer) -> None:
    url = llm.gemini_base + "/models/gemini-2.5-flash:generateContent"
    body = {
        "contents": [{"role": "user", "parts": [{"text": "RSI 25"}]}],
        "generationConfig": {
            "responseMimeType": "application/json",
            "responseSchema": {
                "type": "OBJECT",
                "properties": {
                    "signal": {"type": "STRING", "enum": ["LONG", "SHORT", "FLAT"]},
                    "confidence": {"type": "INTEGER", "minimum": 0, "maximum": 100},
                    "stop": {"type": "NUMBER", "nullable": True},
                },
                "required": ["signal", "confidence"],
            },
        },
    }
    status, payload, _ = await post(url + "?key=" + llm.api_key("gemini"), body)
    assert status == 200
    candidate = payload["candidates"][0]
    assert candidate["finishReason"] == "STOP" and candidate["content"]["role"] == "model"
    assert json.loads(candidate["content"]["parts"][0]["text"]) == {
        "signal": "LONG",
        "confidence": 71,
        "stop": 2.0,
    }
    meta = payload["usageMetadata"]
    assert meta["totalTokenCount"] == meta["promptTokenCount"] + meta["candidatesTokenCount"]

    status, payload, _ = await post(url, body)
    assert status == 403 and payload["error"]["status"] == "PERMISSION_DENIED"
    status, payload, _ = await post(url, body, {"x-goog-api-key": "nope"})
    assert status == 400 and payload["error"]["message"] == "API key not valid. Please pass a valid API key."
    status, payload, _ = await post(url, {"contents": []}, {"x-goog-api-key": llm.api_key("gemini")})
    assert status == 400 and payload["error"]["status"] == "INVALID_ARGUMENT"

    count = llm.base_url + "/v1beta/models/gemini-2.5-flash:countTokens"
    status, payload, _ = await post(count, body, {"x-goog-api-key": llm.api_key("gemini")})
    assert status == 200 and payload["totalTokens"] > 0


async def test_gemini_forced_function_call(llm: LLMServer) -> None:
    body = {
        "contents": [{"parts": [{"text": "bearish, downtrend"}]}],
        "tools": [{"functionDeclarations": [{"name": "cast_vote", "parameters": VOTE_SCHEMA}]}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
    }
    url = llm.gemini_base + "/models/gemini-2.5-pro:generateContent"
    status, payload, _ = await post(url, body, {"x-goog-api-key": llm.api_key("gemini")})
    assert status == 200
    call = payload["candidates"][0]["content"]["parts"][0]["functionCall"]
    assert call["name"] == "cast_vote" and call["args"]["action"] == "sell"


async def test_extra_keys_and_auth_off() -> None:
    async with LLMServer({"openai": ["sk-a", "sk-b"]}) as llm:
        body = {"model": "gpt-4o", "messages": [USER]}
        assert (await post(llm.openai_base + "/chat/completions", body, {"Authorization": "Bearer sk-b"}))[
            0
        ] == 200
        llm.add_api_key("openai", "sk-c")
        assert (await post(llm.openai_base + "/chat/completions", body, {"Authorization": "Bearer sk-c"}))[
            0
        ] == 200
    async with LLMServer(require_auth=False) as llm:
        assert (await post(llm.openai_base + "/chat/completions", body))[0] == 200


def test_the_internet_is_off(no_internet: list[str]) -> None:
    with pytest.raises(OSError):
        socket.getaddrinfo("api.openai.com", 443)
    assert no_internet == ["lookup api.openai.com"]
    no_internet.clear()
