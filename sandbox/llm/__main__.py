"""Run the LLM API server: ``python -m sandbox.llm``.

Prints one JSON line with the base URL, each provider's ``api_base`` and key, and the control API, then
serves until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from sandbox.llm.server import DEFAULT_API_KEYS, LLMServer


async def _serve(args: argparse.Namespace) -> None:
    keys = {
        "openai": args.openai_key or DEFAULT_API_KEYS["openai"],
        "anthropic": args.anthropic_key or DEFAULT_API_KEYS["anthropic"],
        "gemini": args.gemini_key or DEFAULT_API_KEYS["gemini"],
    }
    server = LLMServer(keys, seed=args.seed, require_auth=not args.no_auth)
    await server.start(args.host, args.port)
    info = server.info()
    info.pop("scripts", None)
    print(json.dumps(info), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.llm", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--seed", type=int, default=0, help="seed for votes on prompts without signals")
    parser.add_argument("--openai-key", help=f"default {DEFAULT_API_KEYS['openai']}")
    parser.add_argument("--anthropic-key", help=f"default {DEFAULT_API_KEYS['anthropic']}")
    parser.add_argument("--gemini-key", help=f"default {DEFAULT_API_KEYS['gemini']}")
    parser.add_argument("--no-auth", action="store_true", help="accept any key, or none")
    args = parser.parse_args(argv)
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
