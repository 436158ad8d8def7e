"""Fixtures: an LLM server on a free local port and the real litellm client, kept off the internet.

litellm reads its price map, Anthropic beta-header table and a few other tables from GitHub at import time
unless told to use the copies it ships; those switches are set before it is imported, and every test runs
with outbound connections to anything but the loopback interface refused (and reported)."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from sandbox.llm import LLMServer

for _table in (
    "MODEL_COST_MAP",
    "ANTHROPIC_BETA_HEADERS",
    "BLOG_POSTS",
    "POLICY_TEMPLATES",
    "AUTOROUTER_PRESETS",
):
    os.environ.setdefault(f"LITELLM_LOCAL_{_table}", "True")


@pytest.fixture(autouse=True, scope="session")
def quiet_litellm() -> None:
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False


def _is_loopback(host: Any) -> bool:
    if not isinstance(host, str):
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def no_internet(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Refuse name lookups and connections to anything but loopback; fail the test if any was tried."""
    attempts: list[str] = []
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not _is_loopback(host.decode() if isinstance(host, bytes) else host):
            attempts.append(f"lookup {host}")
            raise socket.gaierror(socket.EAI_NONAME, "the internet is off in these tests")
        return real_getaddrinfo(host, *args, **kwargs)

    def allowed(sock: socket.socket, address: Any) -> bool:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return True
        return _is_loopback(address[0])

    def connect(sock: socket.socket, address: Any) -> None:
        if not allowed(sock, address):
            attempts.append(f"connect {address}")
            raise ConnectionRefusedError("the internet is off in these tests")
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        if not allowed(sock, address):
            attempts.append(f"connect {address}")
            return 111
        return real_connect_ex(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield attempts
    assert attempts == [], f"tried to reach the internet: {attempts}"


@pytest.fixture
async def llm() -> AsyncIterator[LLMServer]:
    server = LLMServer(seed=7)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
