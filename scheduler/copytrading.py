"""Copy-trading jobs: the stop-copy drawdown watcher."""

from __future__ import annotations

import structlog

from services.copytrading.relay import CopyRelay

log = structlog.get_logger(__name__)


async def copy_drawdowns_job(relay: CopyRelay, tenant_id: int | None = None) -> None:
    paused = await relay.watch_drawdowns(tenant_id)
    if paused:
        log.info("copy.drawdowns_paused", follows=[result.follow.id for result in paused])
