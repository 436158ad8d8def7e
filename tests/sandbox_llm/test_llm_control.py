"""The control HTTP API and ``python -m sandbox.llm``."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import aiohttp
import litellm
import pytest

from sandbox.llm import LLMServer
from tests.sandbox_llm.llm_support import CLAUDE, GEMINI, OPENAI, VOTE_SCHEMA, ask, content

ROOT = Path(__file__).resolve().parents[2]


async def control(llm: LLMServer, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, f"{llm.base_url}/sandbox/api{path}", json=body) as response,
    ):
        payload = await response.json()
        assert response.status == 200, payload
        assert payload["ok"] is True
        return payload["result"]


async def test_scripts_over_http(llm: LLMServer) -> None:
    script = await control(
        llm, "POST", "/script", {"model": "gpt-4o-mini", "answer": {"action": "sell"}, "times": 1}
    )
    assert script["mode"] == "answer" and script["mode_times"] == 1
    assert json.loads(content(await ask(llm, OPENAI))) == {"action": "sell"}
    assert json.loads(content(await ask(llm, OPENAI)))["action"] == "buy"

    await control(
        llm,
        "POST",
        "/script",
        {"model": CLAUDE.model, "error": {"status": 429, "retry_after": 1, "times": 1}},
    )
    with pytest.raises(litellm.RateLimitError):
        await ask(llm, CLAUDE)
    await ask(llm, CLAUDE)

    await control(llm, "POST", "/script", {"model": GEMINI.model, "mode": "invalid_json"})
    await control(llm, "POST", "/script", {"model": GEMINI.model, "delay": 0.05})
    scripts = await control(llm, "GET", "/scripts")
    gemini = next(s for s in scripts if s["model"] == "gemini-2.5-flash")
    assert (gemini["mode"], gemini["delay"]) == ("invalid_json", 0.05)
    assert content(await ask(llm, GEMINI)).startswith("Sure!")

    await control(llm, "POST", "/reset", {"model": GEMINI.model})
    json.loads(content(await ask(llm, GEMINI)))
    await control(llm, "POST", "/reset")
    assert await control(llm, "GET", "/scripts") == []


async def test_request_log_over_http(llm: LLMServer) -> None:
    await ask(llm, OPENAI)
    await ask(llm, GEMINI)
    records = await control(llm, "GET", "/requests")
    assert [r["provider"] for r in records] == ["openai", "gemini"]
    assert records[0]["response_format"]["response_format"]["json_schema"]["name"] == "trading_vote"
    assert records[1]["output_kind"] == "json" and records[1]["schema"]["required"] == VOTE_SCHEMA["required"]
    assert [r["model"] for r in await control(llm, "GET", "/requests?provider=gemini")] == [
        "gemini-2.5-flash"
    ]
    assert await control(llm, "GET", f"/requests?since={records[1]['id']}") == []
    await control(llm, "POST", "/requests/reset")
    assert llm.requests == []


async def test_info_keys_and_vote_preview(llm: LLMServer) -> None:
    info = await control(llm, "GET", "/info")
    assert info["openai"]["api_base"] == llm.openai_base and info["gemini"]["api_base"].endswith("/v1beta")
    await control(llm, "POST", "/api_keys", {"provider": "anthropic", "key": "sk-ant-second"})
    assert "sk-ant-second" in llm.api_keys["anthropic"]
    await ask(llm, CLAUDE, api_key="sk-ant-second")

    preview = await control(llm, "POST", "/vote", {"prompt": "RSI 75, downtrend", "schema": VOTE_SCHEMA})
    assert preview["vote"]["action"] == "sell" and preview["answer"]["action"] == "sell"

    async with aiohttp.ClientSession() as session:
        bad = {"model": "x", "mode": "sulk"}
        async with session.post(f"{llm.base_url}/sandbox/api/script", json=bad) as response:
            assert response.status == 400 and "mode must be one of" in (await response.json())["error"]
        async with session.post(
            f"{llm.base_url}/sandbox/api/script", json={"model": "x", "error": {"status": 200}}
        ) as response:
            assert response.status == 400


async def test_python_m_sandbox_llm_prints_its_urls_and_serves() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox.llm",
        "--openai-key",
        "sk-cli",
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 10)
        info = json.loads(line)
        assert info["openai"]["api_key"] == "sk-cli" and info["anthropic"]["api_key"] == "sk-ant-sandbox"
        response = await litellm.acompletion(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "RSI 20"}],
            api_base=info["openai"]["api_base"],
            api_key="sk-cli",
            num_retries=0,
            max_retries=0,
            timeout=5,
        )
        assert "BUY" in content(response)
    finally:
        process.terminate()
        await process.wait()
