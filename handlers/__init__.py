"""aiogram routers, one module per feature. Thin: parse, call a service, render."""

from __future__ import annotations

from aiogram import Router

from handlers import (
    accounts,
    admin,
    alerts,
    billing,
    copytrading,
    errors,
    fallback,
    market,
    menu,
    positions,
    risk,
    settings,
    signals,
    start,
    trading,
    voice,
)


def build_root_router() -> Router:
    """All feature routers in precedence order; the menu's catch-all and the fallback come last."""
    root = Router(name="root")
    root.include_routers(
        errors.build_router(),
        accounts.build_router(),  # first: its connect wizard must see every message of a user inside it
        copytrading.build_router(),  # before start: the Copy deep link is a /start payload
        start.build_router(),
        settings.build_router(),
        risk.build_router(),
        admin.build_router(),
        trading.build_router(),
        positions.build_router(),
        market.build_router(),
        signals.build_router(),
        alerts.build_router(),
        billing.build_router(),
        voice.build_router(),  # after every command: voice notes and free text
        menu.build_router(),
        fallback.build_router(),
    )
    return root
