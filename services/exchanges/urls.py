"""Pointing a ccxt client at another host (an emulator, a proxy): rebase every API URL onto a base URL."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

_ORIGIN = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/]+")


def rebase_urls(api_urls: Any, base_url: str) -> Any:
    """A copy of ``api_urls`` (ccxt's ``urls['api']``: a string or a nested dict/list of strings) with the
    origin (scheme://host[:port]) of every URL replaced by ``base_url``, each URL keeping its path. A path in
    ``base_url`` is kept as a prefix; ``{hostname}`` templates in hosts are replaced as well."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("base_url must be an absolute http(s) URL")
    base = base_url.rstrip("/")

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(value) for value in node]
        if isinstance(node, str):
            return _ORIGIN.sub(lambda _: base, node, count=1)
        return node

    return walk(api_urls)
