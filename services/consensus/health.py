"""Health of an LLM provider for the master controller: a one-token completion, at most once per interval.

A successful answer is trusted for `ttl` seconds, so the controller's frequent checks cost one tiny call
per provider every few minutes, not one per round."""

from __future__ import annotations

import time
from collections.abc import Callable

from services.consensus import voters as _voters  # sets litellm's offline defaults before it loads
from services.consensus.config import LLMVoterConfig


class LLMProbe:
    def __init__(
        self, voter: LLMVoterConfig, *, ttl: float = 600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.voter = voter
        self.ttl = ttl
        self.clock = clock
        self._healthy_until = 0.0

    async def __call__(self) -> None:
        """Returns when the provider answers; raises (the controller counts it down) when it does not."""
        if self.clock() < self._healthy_until:
            return
        kwargs: dict[str, object] = {}
        if self.voter.api_base:
            kwargs["api_base"] = self.voter.api_base
        if self.voter.api_key is not None:
            kwargs["api_key"] = self.voter.api_key.get_secret_value()
        await _voters.litellm.acompletion(
            model=self.voter.model,
            messages=[{"role": "user", "content": "ping"}],
            max_tokens=1,
            timeout=self.voter.timeout,
            num_retries=0,
            **kwargs,
        )
        self._healthy_until = self.clock() + self.ttl
