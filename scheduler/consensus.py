"""Consensus job: resolve the AI signals whose horizon has ended and update the voters' records."""

from __future__ import annotations

import structlog

from services.consensus.service import ConsensusService, ResolveReport

log = structlog.get_logger(__name__)


async def resolve_signals_job(consensus: ConsensusService) -> ResolveReport:
    report = await consensus.resolve_due()
    hits = sum(1 for item in report.resolved if item.hit)
    if report.resolved:
        log.info("consensus.job", resolved=len(report.resolved), hits=hits, pending=report.pending)
    return report
