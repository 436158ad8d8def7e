"""Run the emulator standalone: ``python -m sandbox.telegram --port 8081 --token 123:abc``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from .server import TelegramEmulator


async def _serve(args: argparse.Namespace) -> None:
    emu = TelegramEmulator(
        callback_query_timeout=args.callback_timeout, pre_checkout_timeout=args.pre_checkout_timeout
    )
    await emu.start(args.host, args.port)
    tokens = args.token or [None]
    for index, token in enumerate(tokens):
        username = args.username if index == 0 else f"{args.username}{index + 1}"
        created = emu.add_bot(username, token=token)
        print(f"bot @{username}: token {created}", flush=True)
    print(f"Bot API: {emu.base_url}  (aiogram: TelegramAPIServer.from_base({emu.base_url!r}))", flush=True)
    print(f"web chat: {emu.base_url}/", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await emu.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Telegram Bot API emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", action="append", help="bot token '<id>:<secret>' (repeatable)")
    parser.add_argument("--username", default="cryptouniverse_bot")
    parser.add_argument("--callback-timeout", type=float, default=15.0)
    parser.add_argument("--pre-checkout-timeout", type=float, default=10.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
