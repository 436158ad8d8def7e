"""AI consensus signals: several voters (LLMs through litellm, technical-analysis rules) answer the same
market snapshot; their votes are weighted by each voter's track record."""

from services.consensus.aggregate import Consensus, Progress, ProgressCallback, TrackRecord, aggregate
from services.consensus.budget import BudgetStatus
from services.consensus.cache import AnswerCache, MemoryAnswerCache, RedisAnswerCache
from services.consensus.config import (
    ConsensusSettings,
    LLMVoterConfig,
    parse_llm_voters,
    resolve_llm_voters,
)
from services.consensus.service import (
    ConsensusService,
    NotEnoughData,
    ResolvedSignal,
    ResolveReport,
    SignalNotFound,
    SignalResult,
    TradeSuggestion,
    VoteResult,
    VoterRecord,
)
from services.consensus.snapshot import Snapshot, symbol_class
from services.consensus.voters import LLMVoter, TAVoter, Vote, Voter

__all__ = [
    "AnswerCache",
    "BudgetStatus",
    "Consensus",
    "ConsensusService",
    "ConsensusSettings",
    "LLMVoter",
    "LLMVoterConfig",
    "MemoryAnswerCache",
    "NotEnoughData",
    "Progress",
    "ProgressCallback",
    "RedisAnswerCache",
    "ResolveReport",
    "ResolvedSignal",
    "SignalNotFound",
    "SignalResult",
    "Snapshot",
    "TAVoter",
    "TrackRecord",
    "TradeSuggestion",
    "Vote",
    "VoteResult",
    "Voter",
    "VoterRecord",
    "aggregate",
    "parse_llm_voters",
    "resolve_llm_voters",
    "symbol_class",
]
