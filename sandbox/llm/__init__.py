"""A local LLM API (OpenAI Chat Completions, Anthropic Messages, Google Gemini generateContent) with a
scripted, deterministic trading-vote brain, for litellm to talk to over real HTTP."""

from sandbox.llm.brain import VOTE_SCHEMA, Vote, derive_vote
from sandbox.llm.core import ApiError, RequestRecord
from sandbox.llm.schema import generate, is_valid, validate, violate
from sandbox.llm.script import ErrorScript, Script, model_key
from sandbox.llm.server import DEFAULT_API_KEYS, DEFAULT_MODELS, LLMServer

__all__ = [
    "DEFAULT_API_KEYS",
    "DEFAULT_MODELS",
    "VOTE_SCHEMA",
    "ApiError",
    "ErrorScript",
    "LLMServer",
    "RequestRecord",
    "Script",
    "Vote",
    "derive_vote",
    "generate",
    "is_valid",
    "model_key",
    "validate",
    "violate",
]
