"""Bot API: sending files (photo, document, voice, audio, video, ...), media groups and getFile."""

from __future__ import annotations

import secrets
from typing import Any

import aiohttp

from . import errors
from .api import (
    ApiContext,
    extra_fields,
    formatted,
    method,
    reply_fields,
    reply_markup,
    target_conversation,
    text_fields,
)
from .errors import bad_request
from .markup import ParseError, parse
from .media import IMAGE_MIME, extension, guess_mime, image_kind, image_size
from .params import Params, Upload
from .state import Bot, FileRecord, Json, State

_KIND_NAMES = {
    "photo": "Photo", "document": "Document", "voice": "Voice", "audio": "Audio", "video": "Video",
    "video_note": "VideoNote", "animation": "Animation", "sticker": "Sticker",
}  # fmt: skip
_DEFAULT_MIME = {
    "voice": "audio/ogg", "audio": "audio/mpeg", "video": "video/mp4", "video_note": "video/mp4",
    "animation": "video/mp4", "sticker": "image/webp", "document": "application/octet-stream",
}  # fmt: skip
_DEFAULT_EXT = {
    "voice": "oga", "audio": "mp3", "video": "mp4", "video_note": "mp4", "animation": "mp4",
    "sticker": "webp", "document": "bin", "photo": "jpg",
}  # fmt: skip
MAX_DOWNLOAD = 20 * 1024 * 1024


def store_upload(
    state: State, kind: str, upload: Upload, *, duration: int | None = None, mime_type: str | None = None
) -> FileRecord:
    """Store uploaded bytes as a file of ``kind``; photos must be real images (as with Telegram)."""
    data = upload.data
    if not data:
        raise bad_request("file must be non-empty")
    if kind == "photo":
        size = image_size(data)
        fmt = image_kind(data)
        if size is None or fmt is None:
            raise bad_request("IMAGE_PROCESS_FAILED")
        if size[0] <= 0 or size[1] <= 0 or size[0] + size[1] > 10000 or max(size) > 20 * min(size):
            raise bad_request("PHOTO_INVALID_DIMENSIONS")
        if len(data) > 10 * 1024 * 1024:
            raise bad_request("PHOTO_SAVE_FILE_INVALID")
        ext = "jpg" if fmt == "jpeg" else fmt
        return state.add_file(
            "photo", data, mime_type=IMAGE_MIME[fmt], extension=ext, width=size[0], height=size[1]
        )
    mime = mime_type or _upload_mime(upload, kind)
    width = height = None
    if kind in ("sticker", "video", "animation", "video_note"):
        size = image_size(data)
        if size is not None:
            width, height = size
    return state.add_file(
        kind,
        data,
        mime_type=mime,
        extension=extension(upload.filename, mime, _DEFAULT_EXT.get(kind, "bin")),
        file_name=upload.filename if kind in ("document", "audio", "video", "animation") else None,
        width=width,
        height=height,
        duration=duration,
    )


def _upload_mime(upload: Upload, kind: str) -> str:
    default = _DEFAULT_MIME.get(kind, "application/octet-stream")
    if upload.content_type and upload.content_type != "application/octet-stream":
        return upload.content_type
    return guess_mime(upload.filename, default)


async def resolve_file(
    ctx: ApiContext, kind: str, source: Upload | str, p: Params | None = None
) -> FileRecord:
    """An uploaded file, a known file_id, or an HTTP URL Telegram would download."""
    if isinstance(source, Upload):
        duration = p.integer("duration") if p is not None else None
        return store_upload(ctx.state, kind, source, duration=duration)
    record = ctx.state.files.get(source)
    if record is not None:
        compatible = record.kind == kind or (kind == "document" and record.kind != "photo")
        if not compatible:
            raise bad_request(f"can't use file of type {_KIND_NAMES[record.kind]} as {_KIND_NAMES[kind]}")
        return record
    if source.startswith(("http://", "https://")):
        upload = await _download(ctx, source)
        return store_upload(ctx.state, kind, upload)
    raise bad_request("wrong file identifier/HTTP URL specified")


async def _download(ctx: ApiContext, url: str) -> Upload:
    try:
        timeout = aiohttp.ClientTimeout(total=ctx.settings.url_fetch_timeout)
        async with ctx.http().get(url, timeout=timeout) as response:
            if response.status != 200:
                raise bad_request("failed to get HTTP URL content")
            data = await response.content.read(MAX_DOWNLOAD + 1)
            content_type = response.content_type
    except (aiohttp.ClientError, TimeoutError, ValueError):
        raise bad_request("failed to get HTTP URL content") from None
    if len(data) > MAX_DOWNLOAD:
        raise bad_request("failed to get HTTP URL content")
    name = url.rsplit("/", 1)[-1].split("?", 1)[0] or None
    return Upload(name, data, content_type)


def media_object(record: FileRecord, kind: str, p: Params | None = None) -> Any:
    """The Bot API object (PhotoSize list, Document, Voice, ...) for a stored file."""

    def opt_int(name: str) -> int | None:
        return p.integer(name) if p is not None else None

    def opt_str(name: str) -> str | None:
        return p.string(name) if p is not None else None

    base: Json = {"file_id": record.file_id, "file_unique_id": record.file_unique_id}
    if kind == "photo":
        return [
            {**base, "file_size": record.file_size, "width": record.width or 0, "height": record.height or 0}
        ]
    duration = opt_int("duration") or record.duration or 0
    if kind == "voice":
        return {"duration": duration, "mime_type": record.mime_type, **base, "file_size": record.file_size}
    if kind == "video_note":
        length = opt_int("length") or record.width or 240
        return {"duration": duration, "length": length, **base, "file_size": record.file_size}
    if kind == "sticker":
        return {
            "width": record.width or 512,
            "height": record.height or 512,
            "emoji": opt_str("emoji") or "🙂",
            "type": "regular",
            "is_animated": False,
            "is_video": record.mime_type == "video/webm",
            **base,
            "file_size": record.file_size,
        }
    obj: Json = {}
    if kind in ("video", "animation"):
        obj.update(
            {
                "duration": duration,
                "width": opt_int("width") or record.width or 0,
                "height": opt_int("height") or record.height or 0,
            }
        )
    if kind == "audio":
        obj["duration"] = duration
        for key in ("performer", "title"):
            value = opt_str(key)
            if value:
                obj[key] = value
    if record.file_name:
        obj["file_name"] = record.file_name
    obj["mime_type"] = record.mime_type
    obj.update(base)
    obj["file_size"] = record.file_size
    return obj


async def _send_media(ctx: ApiContext, bot: Bot, p: Params, kind: str) -> Json:
    source = p.input_file(kind)
    if source is None:
        raise bad_request(f"there is no {kind} in the request")
    caption, entities = formatted(
        p, "caption", "caption_entities", 1024, required=False, long_error=errors.CAPTION_TOO_LONG
    )
    inline, keyboard = reply_markup(p)
    conv = target_conversation(ctx, bot, p)
    record = await resolve_file(ctx, kind, source, p)
    fields = reply_fields(conv, p)
    fields[kind] = media_object(record, kind, p)
    fields.update(text_fields(caption, entities, caption=True))
    if caption and p.flag("show_caption_above_media"):
        fields["show_caption_above_media"] = True
    if p.flag("has_spoiler"):
        fields["has_media_spoiler"] = True
    fields.update(extra_fields(p))
    if inline is not None:
        fields["reply_markup"] = inline
    return ctx.state.store_message(
        conv, bot.user, fields, file_ids=(record.file_id,), reply_keyboard=keyboard
    )


def _register(kind: str, name: str) -> None:
    async def handler(ctx: ApiContext, bot: Bot, p: Params) -> Json:
        return await _send_media(ctx, bot, p, kind)

    handler.__name__ = f"send_{kind}"
    method(name)(handler)


for _kind, _name in (
    ("photo", "sendPhoto"),
    ("document", "sendDocument"),
    ("voice", "sendVoice"),
    ("audio", "sendAudio"),
    ("video", "sendVideo"),
    ("video_note", "sendVideoNote"),
    ("animation", "sendAnimation"),
    ("sticker", "sendSticker"),
):
    _register(_kind, _name)


@method("sendMediaGroup")
async def send_media_group(ctx: ApiContext, bot: Bot, p: Params) -> list[Json]:
    items = p.json("media")
    if not isinstance(items, list) or not 2 <= len(items) <= 10:
        raise bad_request(
            "wrong number of messages specified" if isinstance(items, list) else "media is empty"
        )
    conv = target_conversation(ctx, bot, p)
    prepared: list[tuple[str, FileRecord, str, list[Json]]] = []
    for item in items:
        if not isinstance(item, dict) or item.get("type") not in ("photo", "video", "document", "audio"):
            raise bad_request("can't parse InputMedia JSON object")
        kind = str(item["type"])
        source: Upload | str | None = None
        media = item.get("media")
        if isinstance(media, str) and media.startswith("attach://"):
            source = p.files.get(media[len("attach://") :])
        elif isinstance(media, str) and media:
            source = media
        if source is None:
            raise bad_request("wrong file identifier/HTTP URL specified")
        record = await resolve_file(ctx, kind, source)
        try:
            caption, entities = parse(
                str(item.get("caption", "")), item.get("parse_mode") or p.string("parse_mode")
            )
        except ParseError as exc:
            raise bad_request(f"can't parse entities: {exc}") from None
        prepared.append((kind, record, caption, entities))
    group_id = str(secrets.randbits(62))
    result: list[Json] = []
    replied = reply_fields(conv, p)
    for kind, record, caption, entities in prepared:
        fields: Json = dict(replied)
        fields["media_group_id"] = group_id
        fields[kind] = media_object(record, kind)
        fields.update(text_fields(caption, entities, caption=True))
        result.append(ctx.state.store_message(conv, bot.user, fields, file_ids=(record.file_id,)))
    return result


@method("getFile")
async def get_file(ctx: ApiContext, bot: Bot, p: Params) -> Json:
    file_id = p.required_string("file_id", "file_id is empty")
    record = ctx.state.files.get(file_id)
    if record is None:
        raise bad_request("invalid file_id")
    if record.file_size > MAX_DOWNLOAD:
        raise bad_request("file is too big")
    return {
        "file_id": record.file_id,
        "file_unique_id": record.file_unique_id,
        "file_size": record.file_size,
        "file_path": record.file_path,
    }
