"""Copy-trading jobs: the stop-copy drawdown watcher and the fan-out sweep."""

from __future__ import annotations

import structlog

from services.copytrading.queue import FanOutQueue
from services.copytrading.relay import CopyRelay

log = structlog.get_logger(__name__)


async def copy_drawdowns_job(relay: CopyRelay, tenant_id: int | None = None) -> None:
    paused = await relay.watch_drawdowns(tenant_id)
    if paused:
        log.info("copy.drawdowns_paused", follows=[result.follow.id for result in paused])


async def copy_fan_out_sweep_job(queue: FanOutQueue, tenant_id: int | None = None) -> int:
    """Leader actions whose fan-out did not finish (a process died mid-way) go to the queue again."""
    given_up = await queue.relay.claims.given_up(tenant_id)
    if given_up:
        log.error("copy.fan_out_given_up", actions=given_up)
    return await queue.sweep(tenant_id)
