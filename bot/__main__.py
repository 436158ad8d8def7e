"""`cryptouniverse` / `python -m bot`: run, sandbox, migrate."""

from __future__ import annotations

import argparse
import asyncio
import sys

import structlog

from bot import __version__
from bot.logging import setup_logging
from bot.settings import Settings

log = structlog.get_logger("cryptouniverse")


async def _migrate(settings: Settings, revision: str) -> None:
    from db import migrate
    from db.engine import create_engine

    settings.ensure_data_dir()
    engine = create_engine(settings.resolved_database_url)
    try:
        if revision.startswith("-") or revision == "base":
            await migrate.downgrade(engine, revision)
        else:
            await migrate.upgrade(engine, revision)
        log.info("migrate.done", revision=await migrate.current(engine))
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cryptouniverse", description="CryptoUniverse trading bot")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="run the bot (starts the local sandbox when BOT_TOKEN is not set)")
    sub.add_parser("sandbox", help="run the Telegram emulator, the bot connected to it and the web chat")
    migrate_parser = sub.add_parser("migrate", help="apply database migrations")
    migrate_parser.add_argument("revision", nargs="?", default="head")
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2

    settings = Settings()
    setup_logging(settings.log_level, settings.log_format)
    try:
        if args.command == "migrate":
            asyncio.run(_migrate(settings, args.revision))
        elif args.command == "sandbox" or (args.command == "run" and settings.bot_token is None):
            from bot.sandbox import run_sandbox

            if args.command == "run":
                log.warning("run.no_token", message="BOT_TOKEN is not set: starting the local sandbox")
            asyncio.run(run_sandbox(settings))
        else:
            from bot.runner import run

            asyncio.run(run(settings))
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
