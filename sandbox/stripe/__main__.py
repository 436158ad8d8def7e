"""Run the Stripe emulator: ``python -m sandbox.stripe``.

Prints one JSON line with the base URL, the API key and, with ``--webhook-url``, the webhook signing secret,
then serves until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from sandbox.stripe.server import DEFAULT_API_KEY, StripeEmulator


async def _serve(args: argparse.Namespace) -> None:
    emulator = StripeEmulator(api_key=args.api_key, seed=args.seed, public_url=args.public_url)
    await emulator.start(args.host, args.port)
    info: dict[str, object] = {
        "base_url": emulator.base_url,
        "api_key": args.api_key,
        "control_api": emulator.base_url + "/sandbox/api",
    }
    if args.webhook_url:
        endpoint = emulator.add_webhook_endpoint(args.webhook_url, args.webhook_secret, args.event or ["*"])
        info["webhook_url"] = endpoint.url
        info["webhook_secret"] = endpoint.secret
    print(json.dumps(info), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await emulator.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.stripe", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--seed", type=int, default=None, help="seed for object ids")
    parser.add_argument("--public-url", help="origin used in Checkout and invoice page links")
    parser.add_argument("--webhook-url", help="deliver events to this URL")
    parser.add_argument("--webhook-secret", help="signing secret (whsec_...); generated when omitted")
    parser.add_argument("--event", action="append", help="event type to deliver (repeatable; default all)")
    args = parser.parse_args(argv)
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
