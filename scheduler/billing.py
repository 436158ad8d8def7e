"""Billing jobs: plans that ended are expired, plans about to end are announced."""

from __future__ import annotations

import structlog

from services.billing.renewals import PlanNotice, RenewalService
from services.notify import Notifier

log = structlog.get_logger(__name__)


async def _tell(notifier: Notifier, notices: list[PlanNotice]) -> None:
    for notice in notices:
        try:
            await notifier.send(notice.telegram_id, notice.locale, notice.key, **notice.params)
        except Exception:  # one undeliverable message must not stop the others
            log.exception("billing.notify_failed", key=notice.key, subscription_id=notice.subscription_id)


async def renewals_job(renewals: RenewalService, notifier: Notifier) -> int:
    """Expire plans whose period ended, then remind those ending soon; returns how many users were told."""
    expired = await renewals.expire()
    await _tell(notifier, expired)
    reminded = await renewals.remind()
    await _tell(notifier, reminded)
    if expired or reminded:
        log.info("billing.renewals", expired=len(expired), reminded=len(reminded))
    return len(expired) + len(reminded)
