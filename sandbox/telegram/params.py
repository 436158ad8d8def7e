"""Reading Bot API parameters from query strings, url-encoded / multipart forms and JSON bodies."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .errors import bad_request

MAX_BODY = 60 * 1024 * 1024


@dataclass(frozen=True)
class Upload:
    """A file sent in a multipart request."""

    filename: str | None
    data: bytes
    content_type: str | None


async def read_request(request: web.Request) -> tuple[dict[str, Any], dict[str, Upload]]:
    """All parameters of a request (query string first, body fields override) and its uploaded files."""
    data: dict[str, Any] = dict(request.query)
    files: dict[str, Upload] = {}
    if request.method != "POST" or not request.body_exists:
        return data, files
    ctype = request.content_type
    if ctype == "application/json":
        try:
            body = await request.json()
        except ValueError as exc:
            raise bad_request("can't parse JSON body") from exc
        if isinstance(body, dict):
            data.update(body)
        return data, files
    if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                upload = Upload(value.filename, value.file.read(), value.content_type)
                if ctype == "multipart/form-data" and value.filename is None:
                    data[key] = upload.data.decode("utf-8", "replace")
                else:
                    files[key] = upload
            else:
                data[key] = value
        return data, files
    raw = await request.read()
    if raw.strip():
        try:
            body = json.loads(raw)
        except ValueError:
            return data, files
        if isinstance(body, dict):
            data.update(body)
    return data, files


_TRUE = frozenset({"true", "1", "yes", "on"})


class Params:
    """Typed access to request parameters with Telegram-like errors."""

    def __init__(self, data: dict[str, Any], files: dict[str, Upload] | None = None) -> None:
        self.data = data
        self.files = files or {}

    def __contains__(self, name: str) -> bool:
        return self.get(name) is not None

    def get(self, name: str) -> Any:
        value = self.data.get(name)
        if value is None and name in self.files:
            return self.files[name]
        return value

    def string(self, name: str, default: str | None = None) -> str | None:
        value = self.data.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, dict | list):
            return json.dumps(value)
        return str(value)

    def required_string(self, name: str, error: str | None = None) -> str:
        value = self.string(name)
        if value is None or value == "":
            raise bad_request(error or f"{name} is empty")
        return value

    def integer(self, name: str, default: int | None = None) -> int | None:
        value = self.data.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            try:
                as_float = float(str(value))
            except ValueError:
                raise bad_request(f"invalid {name} specified") from None
            return int(as_float)

    def required_integer(self, name: str, error: str | None = None) -> int:
        value = self.integer(name)
        if value is None:
            raise bad_request(error or f"{name} is empty")
        return value

    def number(self, name: str, default: float | None = None) -> float | None:
        value = self.data.get(name)
        if value is None or value == "":
            return default
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad_request(f"invalid {name} specified") from None

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.data.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        return str(value).strip().lower() in _TRUE

    def json(self, name: str, what: str | None = None) -> Any:
        """A nested object: already decoded in JSON bodies, a JSON string in forms and query strings."""
        value = self.data.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise bad_request(f"can't parse {what or name} JSON object") from None
        return value

    def chat_id(self, name: str = "chat_id") -> int | str:
        value = self.data.get(name)
        if value is None or value == "":
            raise bad_request(f"{name} is empty")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        text = str(value).strip()
        if text.startswith("@"):
            return text
        try:
            return int(text)
        except ValueError:
            raise bad_request("chat not found") from None

    def input_file(self, name: str) -> Upload | str | None:
        """A file parameter: an upload (directly or via ``attach://``), a file_id or an HTTP URL."""
        if name in self.files:
            return self.files[name]
        value = self.data.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, str) and value.startswith("attach://"):
            upload = self.files.get(value[len("attach://") :])
            if upload is None:
                raise bad_request(f'can\'t find attached file "{value[len("attach://") :]}"')
            return upload
        return str(value)

    def loggable(self) -> dict[str, Any]:
        """Parameters for ``emu.calls``: files are replaced by a short description."""
        result = dict(self.data)
        for key, upload in self.files.items():
            result[key] = f"<file {upload.filename or key}, {len(upload.data)} bytes>"
        return result
