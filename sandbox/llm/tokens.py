"""A tokenizer approximation: words split into pieces of up to four characters, each punctuation mark one
token. Close enough to BPE counts for English prompts and JSON to make usage and cost figures plausible."""

from __future__ import annotations

import re

_TOKEN = re.compile(r"\w{1,4}|[^\w\s]")
MESSAGE_OVERHEAD = 3
REPLY_PRIMING = 3


def count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


def count_prompt_tokens(texts: list[str], extra: str = "") -> int:
    """Tokens of a prompt made of ``texts`` (one per message, each with its framing overhead), plus any
    ``extra`` text the provider adds to the prompt (a JSON schema, tool definitions)."""
    return sum(count_tokens(t) + MESSAGE_OVERHEAD for t in texts) + REPLY_PRIMING + count_tokens(extra)


def truncate_to_tokens(text: str, limit: int) -> str:
    """The prefix of ``text`` holding its first ``limit`` tokens."""
    if limit <= 0:
        return ""
    for index, match in enumerate(_TOKEN.finditer(text), start=1):
        if index == limit:
            return text[: match.end()]
    return text
