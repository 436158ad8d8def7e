"""Run the three exchange emulators on one simulated market: ``python -m sandbox.exchanges``.

Prints one JSON line with each emulator's base URL and the demo account's credentials, then serves until
interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import sys
from decimal import Decimal

from sandbox.exchanges.market import Market
from sandbox.exchanges.server import EXCHANGE_IDS, start_all


def demo_credentials(exchange_id: str, seed: int) -> dict[str, str]:
    """Deterministic demo credentials (Kraken's secret is base64, KuCoin's key has a passphrase)."""
    digest = hashlib.sha256(f"{exchange_id}:{seed}".encode()).digest()
    secret = base64.b64encode(digest * 2).decode() if exchange_id == "kraken" else digest.hex()
    return {"api_key": f"sandbox-{exchange_id}-key", "secret": secret, "passphrase": "sandbox"}


def _balances(items: list[str]) -> dict[str, Decimal]:
    result: dict[str, Decimal] = {}
    for item in items:
        code, _, amount = item.partition("=")
        result[code.strip().upper()] = Decimal(amount)
    return result


async def _serve(args: argparse.Namespace) -> None:
    market = Market(seed=args.seed, live=not args.frozen, tick_seconds=args.tick)
    ports = {name: getattr(args, f"{name}_port") for name in EXCHANGE_IDS}
    emulators = await start_all(host=args.host, market=market, ports=ports)
    balances = _balances(args.balance or ["USDT=10000", "BTC=0.5", "ETH=5"])
    info: dict[str, dict[str, str]] = {}
    for name, emulator in emulators.items():
        creds = demo_credentials(name, args.seed)
        emulator.add_account(
            creds["api_key"], creds["secret"], creds["passphrase"], dict(balances), can_withdraw=False
        )
        info[name] = {"base_url": emulator.base_url, **creds}
    print(json.dumps(info), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        for emulator in emulators.values():
            await emulator.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.exchanges", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--tick", type=float, default=1.0, help="seconds between price ticks")
    parser.add_argument("--frozen", action="store_true", help="do not move prices with the clock")
    parser.add_argument("--balance", action="append", metavar="CODE=AMOUNT", help="demo account balance")
    for name in EXCHANGE_IDS:
        parser.add_argument(f"--{name}-port", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
