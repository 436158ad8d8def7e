"""What an admin's Stars refund needs to know before asking Telegram: the payer and the charge."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Purchase, User
from services.billing.purchases import STARS
from services.errors import NotFoundError, ValidationError


@dataclass(frozen=True, slots=True)
class StarsRefundTarget:
    purchase_id: int
    telegram_id: int
    locale: str | None
    charge_id: str


async def stars_refund_target(session: AsyncSession, purchase_id: int) -> StarsRefundTarget:
    row = await session.get(Purchase, purchase_id)
    if row is None:
        raise NotFoundError("billing.errors.purchase_unknown")
    if row.status != "paid" or row.currency != STARS or not row.provider_charge_id:
        raise ValidationError("billing.errors.not_refundable", id=purchase_id)
    payer = await session.get(User, row.user_id)
    if payer is None:
        raise NotFoundError("billing.errors.purchase_unknown")
    return StarsRefundTarget(
        row.id, payer.telegram_id, payer.locale or payer.language_code, row.provider_charge_id
    )
