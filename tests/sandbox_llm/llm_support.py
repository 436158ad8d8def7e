"""The vote schema the consensus voters use, the provider/model pairs under test and a litellm call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import litellm
from litellm import ModelResponse

from sandbox.llm import LLMServer

VOTE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "action": {"type": "string", "enum": ["buy", "sell", "hold"]},
        "probability": {"type": "number", "minimum": 0, "maximum": 1},
        "horizon": {"type": "string", "enum": ["1h", "4h", "1d", "1w"]},
        "stop_loss": {"type": ["number", "null"]},
        "take_profit": {"type": ["number", "null"]},
        "rationale": {"type": "string", "maxLength": 500},
    },
    "required": ["action", "probability", "horizon", "stop_loss", "take_profit", "rationale"],
    "additionalProperties": False,
}
RESPONSE_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {"name": "trading_vote", "schema": VOTE_SCHEMA, "strict": True},
}
SYSTEM = "You are one voter in a trading committee. Answer with a vote that follows the schema."
OVERSOLD = "BTC/USDT 1h candles. Price 65000. RSI(14): 24.5. Trend: up, golden cross yesterday."


@dataclass(frozen=True)
class Target:
    """A model as the bot names it for litellm, and what litellm sends it for structured output."""

    provider: str
    model: str
    constraint: str
    priced: bool

    @property
    def name(self) -> str:
        return self.model.split("/", 1)[-1]


OPENAI = Target("openai", "gpt-4o-mini", "response_format", priced=True)
CLAUDE = Target("anthropic", "anthropic/claude-haiku-4-5", "output_format", priced=True)
CLAUDE_TOOL = Target("anthropic", "anthropic/claude-3-5-haiku-20241022", "tools", priced=False)
GEMINI = Target("gemini", "gemini/gemini-2.5-flash", "response_json_schema", priced=True)
GEMINI_PROMPTED = Target("gemini", "gemini/gemini-1.5-flash", "response_mime_type", priced=False)
PRICED = [OPENAI, CLAUDE, GEMINI]
ALL = [OPENAI, CLAUDE, CLAUDE_TOOL, GEMINI, GEMINI_PROMPTED]


def messages(user: str = OVERSOLD) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


async def ask(
    server: LLMServer, target: Target, user: str = OVERSOLD, *, timeout: float = 5.0, **kwargs: Any
) -> ModelResponse:
    """One vote request through litellm, no retries, structured output requested."""
    params: dict[str, Any] = {
        **server.client_kwargs(target.provider),
        "response_format": RESPONSE_FORMAT,
        "num_retries": 0,
        "max_retries": 0,
        **kwargs,
    }
    response = await litellm.acompletion(
        model=target.model, messages=messages(user), timeout=timeout, **params
    )
    return cast(ModelResponse, response)


def content(response: object) -> str:
    """The first choice's text of a (non-streamed) litellm response."""
    choice = cast(litellm.Choices, cast(ModelResponse, response).choices[0])
    return choice.message.content or ""
