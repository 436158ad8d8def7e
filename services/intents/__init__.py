"""Natural phrases (voice transcripts and free text) -> the bot's commands, or a question with options."""

from services.intents.numbers import read_number, words_to_number
from services.intents.parser import (
    MONEY_COMMANDS,
    TRADE_COMMANDS,
    Intent,
    IntentKind,
    IntentOption,
    parse_intent,
)

__all__ = [
    "MONEY_COMMANDS",
    "TRADE_COMMANDS",
    "Intent",
    "IntentKind",
    "IntentOption",
    "parse_intent",
    "read_number",
    "words_to_number",
]
