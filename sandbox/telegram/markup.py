"""Telegram text formatting: HTML / MarkdownV2 / Markdown -> plain text + entities, and entities -> safe HTML.

Offsets and lengths are in UTF-16 code units, exactly as the Bot API reports them. Parsing follows TDLib's
rules (``td/telegram/MessageEntity.cpp``) closely enough to accept and refuse the same inputs, with the same
error texts (without the ``Bad Request: can't parse entities:`` prefix, which the caller adds).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

Entity = dict[str, Any]


class ParseError(ValueError):
    """Markup that Telegram refuses; ``str(exc)`` is Telegram's description after "can't parse entities: "."""


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _u16(ch: str) -> int:
    return 2 if ord(ch) > 0xFFFF else 1


def utf16_slice(text: str, offset: int, length: int) -> str:
    """The part of ``text`` covered by a UTF-16 ``offset``/``length`` pair."""
    start = _py_index(text, offset)
    end = _py_index(text, offset + length)
    return text[start:end]


def _py_index(text: str, u16: int) -> int:
    pos = 0
    i = 0
    n = len(text)
    while i < n and pos < u16:
        pos += _u16(text[i])
        i += 1
    return i


class _Builder:
    """Accumulates output text while tracking its UTF-16 length."""

    __slots__ = ("offset", "parts")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.offset = 0

    def add(self, s: str) -> None:
        self.parts.append(s)
        self.offset += utf16_len(s)

    def text(self) -> str:
        return "".join(self.parts)


# ----- links

_ALLOWED_SCHEMES = frozenset({"http", "https", "tg", "ton", "tonsite", "ftp", "mailto"})
_TG_USER = re.compile(r"^tg://user\?id=(\d{1,20})$", re.IGNORECASE)


def check_link(url: str) -> str | None:
    """Normalize a link as Telegram does, or None if Telegram would drop it."""
    url = url.strip()
    if not url or any(ch.isspace() for ch in url):
        return None
    if "://" not in url and not url.lower().startswith("mailto:"):
        url = "http://" + url
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _ALLOWED_SCHEMES:
        return None
    if scheme in ("http", "https", "ftp"):
        if not parts.netloc or ("." not in parts.netloc and parts.hostname != "localhost"):
            return None
        if not parts.path and not parts.query and not parts.fragment:
            url += "/"
    return url


def link_entity(url: str, offset: int, length: int) -> Entity | None:
    m = _TG_USER.match(url.strip())
    if m:
        user_id = int(m.group(1))
        user = {"id": user_id, "is_bot": False, "first_name": str(user_id)}
        return {"type": "text_mention", "offset": offset, "length": length, "user": user}
    checked = check_link(url)
    if checked is None:
        return None
    return {"type": "text_link", "offset": offset, "length": length, "url": checked}


# ----- HTML

_HTML_TAGS = frozenset(
    {
        "a", "b", "strong", "i", "em", "s", "strike", "del", "u", "ins", "tg-spoiler", "tg-emoji", "span",
        "pre", "code", "blockquote",
    }
)  # fmt: skip
_SIMPLE_TAGS = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline", "ins": "underline",
    "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough", "tg-spoiler": "spoiler",
    "span": "spoiler",
}  # fmt: skip
_SPACES = " \t\n\r\f\v"
_ENTITY_RE = re.compile(r"&(?:#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6})|(lt|gt|amp|quot));")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def _decode_entity(text: str, i: int) -> tuple[str, int] | None:
    m = _ENTITY_RE.match(text, i)
    if m is None:
        return None
    if m.group(3):
        return _NAMED[m.group(3)], m.end()
    code = int(m.group(1)) if m.group(1) else int(m.group(2), 16)
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code), m.end()


@dataclass
class _Open:
    tag: str
    argument: str
    offset: int
    begin_pos: int  # index into builder parts where the entity's text starts
    expandable: bool = False


class _ByteOffsets:
    """Maps character indexes of the source to UTF-8 byte offsets (for error messages) lazily."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __call__(self, index: int) -> int:
        return len(self.text[:index].encode("utf-8"))


def parse_html(source: str) -> tuple[str, list[Entity]]:
    """Telegram's ``parse_mode=HTML``. Raises :class:`ParseError` with Telegram's description."""
    out = _Builder()
    entities: list[Entity] = []
    stack: list[_Open] = []
    byte = _ByteOffsets(source)
    n = len(source)
    i = 0
    while i < n:
        c = source[i]
        if c == "&":
            decoded = _decode_entity(source, i)
            if decoded is not None:
                out.add(decoded[0])
                i = decoded[1]
                continue
        if c != "<":
            j = i + 1
            while j < n and source[j] not in "<&":
                j += 1
            out.add(source[i:j])
            i = j
            continue
        begin = i
        i += 1
        if i >= n or source[i] != "/":
            i = _parse_start_tag(source, begin, i, out, stack, byte)
            continue
        # end tag
        if not stack:
            raise ParseError(f"Unexpected end tag at byte offset {byte(begin)}")
        i += 1
        while i < n and source[i] not in _SPACES and source[i] != ">":
            i += 1
        end_name = source[begin + 2 : i]
        while i < n and source[i] in _SPACES:
            i += 1
        if i >= n or source[i] != ">":
            raise ParseError(f"Unclosed end tag at byte offset {byte(begin)}")
        i += 1
        top = stack.pop()
        if end_name and end_name != top.tag:
            raise ParseError(
                f"Unmatched end tag at byte offset {byte(begin)}, "
                f'expected "</{top.tag}>", found "</{end_name}>"'
            )
        _close_html_entity(top, out, entities)
    if stack:
        raise ParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].tag}"')
    return out.text(), entities


def _parse_start_tag(
    source: str, begin: int, i: int, out: _Builder, stack: list[_Open], byte: _ByteOffsets
) -> int:
    n = len(source)
    while i < n and source[i] not in _SPACES and source[i] != ">":
        i += 1
    if i >= n:
        raise ParseError(f"Unclosed start tag at byte offset {byte(begin)}")
    tag = source[begin + 1 : i].lower()
    if tag not in _HTML_TAGS:
        raise ParseError(f'Unsupported start tag "{tag}" at byte offset {byte(begin)}')
    argument = ""
    expandable = False
    while True:
        while i < n and source[i] in _SPACES:
            i += 1
        if i >= n:
            raise ParseError(f'Unclosed start tag "{tag}" at byte offset {byte(begin)}')
        if source[i] == ">":
            i += 1
            break
        attr_begin = i
        while i < n and source[i] not in _SPACES and source[i] not in "=>":
            i += 1
        attr = source[attr_begin:i].lower()
        if not attr:
            raise ParseError(f'Empty attribute name in the tag "{tag}" at byte offset {byte(begin)}')
        while i < n and source[i] in _SPACES:
            i += 1
        if i >= n or source[i] != "=":
            if tag == "blockquote" and attr == "expandable":
                expandable = True
                continue
            raise ParseError(
                f'Expected equal sign in declaration of an attribute of the tag "{tag}" at byte offset '
                f"{byte(begin)}"
            )
        i += 1
        while i < n and source[i] in _SPACES:
            i += 1
        if i >= n:
            raise ParseError(f'Unclosed start tag "{tag}" at byte offset {byte(begin)}')
        if source[i] not in "'\"":
            token_begin = i
            while i < n and (source[i].isalnum() or source[i] in ".-"):
                i += 1
            value = source[token_begin:i].lower()
            if i < n and source[i] not in _SPACES and source[i] != ">":
                raise ParseError(f"Unexpected end of name token at byte offset {byte(token_begin)}")
        else:
            quote = source[i]
            i += 1
            chars: list[str] = []
            while i < n and source[i] != quote:
                if source[i] == "&":
                    decoded = _decode_entity(source, i)
                    if decoded is not None:
                        chars.append(decoded[0])
                        i = decoded[1]
                        continue
                chars.append(source[i])
                i += 1
            if i >= n:
                raise ParseError(f"Unclosed start tag at byte offset {byte(begin)}")
            i += 1
            value = "".join(chars)
        if tag == "a" and attr == "href":
            argument = value
        elif tag == "code" and attr == "class" and value.startswith("language-"):
            argument = value[len("language-") :]
        elif tag == "span" and attr == "class" and value.startswith("tg-"):
            argument = value[len("tg-") :]
        elif tag == "tg-emoji" and attr == "emoji-id":
            argument = value
    if tag == "span" and argument != "spoiler":
        raise ParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {byte(begin)}')
    stack.append(_Open(tag, argument, out.offset, len(out.parts), expandable))
    return i


def _close_html_entity(top: _Open, out: _Builder, entities: list[Entity]) -> None:
    length = out.offset - top.offset
    if length <= 0:
        return
    offset = top.offset
    tag = top.tag
    if tag in _SIMPLE_TAGS:
        entities.append({"type": _SIMPLE_TAGS[tag], "offset": offset, "length": length})
    elif tag == "a":
        url = top.argument or "".join(out.parts[top.begin_pos :])
        link = link_entity(url, offset, length)
        if link is not None:
            entities.append(link)
    elif tag == "blockquote":
        kind = "expandable_blockquote" if top.expandable else "blockquote"
        entities.append({"type": kind, "offset": offset, "length": length})
    elif tag == "tg-emoji":
        if top.argument.isdigit():
            entities.append(
                {"type": "custom_emoji", "offset": offset, "length": length, "custom_emoji_id": top.argument}
            )
    elif tag == "pre":
        last = entities[-1] if entities else None
        if (
            last is not None
            and last["type"] == "code"
            and last["offset"] == offset
            and last["length"] == length
            and last.get("_language")
        ):
            last["type"] = "pre"
            last["language"] = last.pop("_language")
        else:
            entities.append({"type": "pre", "offset": offset, "length": length})
    elif tag == "code":
        last = entities[-1] if entities else None
        if (
            last is not None
            and last["type"] == "pre"
            and last["offset"] == offset
            and last["length"] == length
            and "language" not in last
            and top.argument
        ):
            last["language"] = top.argument
        else:
            entity: Entity = {"type": "code", "offset": offset, "length": length}
            if top.argument:
                entity["_language"] = top.argument
            entities.append(entity)


# ----- MarkdownV2

_MDV2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_MDV2_NAMES = {
    "bold": "Bold", "italic": "Italic", "underline": "Underline", "strikethrough": "Strikethrough",
    "spoiler": "Spoiler", "code": "Code", "pre": "Pre", "pre_code": "PreCode", "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
}  # fmt: skip


@dataclass
class _MdOpen:
    kind: str
    argument: str
    offset: int
    byte_offset: int
    begin_pos: int


def _reserved(ch: str) -> ParseError:
    return ParseError(f"Character '{ch}' is reserved and must be escaped with the preceding '\\'")


def parse_markdown_v2(source: str) -> tuple[str, list[Entity]]:
    """Telegram's ``parse_mode=MarkdownV2``."""
    out = _Builder()
    entities: list[Entity] = []
    stack: list[_MdOpen] = []
    byte = _ByteOffsets(source)
    quote_start: int | None = None  # utf16 offset where the current blockquote began
    n = len(source)
    i = 0

    def at(k: int) -> str:
        return source[k] if k < n else ""

    while i < n:
        c = source[i]
        line_start = i == 0 or source[i - 1] == "\n"
        if c == "\\" and i + 1 < n and 0 < ord(source[i + 1]) <= 126:
            out.add(source[i + 1])
            i += 2
            continue
        in_code = bool(stack) and stack[-1].kind in ("code", "pre", "pre_code")
        if line_start and not in_code:
            if c == ">":
                if quote_start is None:
                    quote_start = out.offset
                i += 1
                continue
            if quote_start is not None:
                _add_quote(entities, quote_start, out)
                quote_start = None
        reserved = "`" if in_code else _MDV2_RESERVED
        if c not in reserved:
            out.add(c)
            i += 1
            continue
        top = stack[-1].kind if stack else ""
        is_end = (
            (top == "bold" and c == "*")
            or (top == "italic" and c == "_" and at(i + 1) != "_")
            or (top == "code" and c == "`")
            or (top in ("pre", "pre_code") and source.startswith("```", i))
            or (top in ("text_link", "custom_emoji") and c == "]")
            or (top == "underline" and source.startswith("__", i))
            or (top == "strikethrough" and c == "~")
            or (top == "spoiler" and source.startswith("||", i))
        )
        if not is_end:
            i = _md_open(source, i, out, stack, byte)
            continue
        opened = stack.pop()
        skip = out.offset == opened.offset
        entity: Entity = {"type": opened.kind, "offset": opened.offset, "length": out.offset - opened.offset}
        if opened.kind in ("underline", "spoiler"):
            i += 2
        elif opened.kind in ("pre", "pre_code"):
            i += 3
            entity["type"] = "pre"
            if opened.kind == "pre_code":
                entity["language"] = opened.argument
        elif opened.kind in ("text_link", "custom_emoji"):
            i, url = _md_url(source, i, byte)
            if opened.kind == "text_link":
                if url is None:
                    url = "".join(out.parts[opened.begin_pos :])
                link = link_entity(url, entity["offset"], entity["length"])
                if link is None:
                    skip = True
                else:
                    entity = link
            else:
                m = re.match(r"^tg://emoji\?id=(\d+)$", url or "")
                if m is None:
                    raise ParseError(
                        f"Custom emoji entity must contain a tg://emoji URL at byte offset {byte(i)}"
                    )
                entity["custom_emoji_id"] = m.group(1)
        else:
            i += 1
        if not skip:
            entities.append(entity)
    if stack:
        last = stack[-1]
        raise ParseError(
            f"Can't find end of {_MDV2_NAMES[last.kind]} entity at byte offset {last.byte_offset}"
        )
    if quote_start is not None:
        _add_quote(entities, quote_start, out)
    return out.text(), entities


def _add_quote(entities: list[Entity], start: int, out: _Builder) -> None:
    end = out.offset
    text = out.text()
    if text.endswith("\n"):
        end -= 1
    if end > start:
        entities.append({"type": "blockquote", "offset": start, "length": end - start})


def _md_open(source: str, i: int, out: _Builder, stack: list[_MdOpen], byte: _ByteOffsets) -> int:
    c = source[i]
    n = len(source)
    begin = i
    argument = ""
    if c == "_":
        if source.startswith("__", i):
            kind = "underline"
            i += 1
        else:
            kind = "italic"
    elif c == "*":
        kind = "bold"
    elif c == "~":
        kind = "strikethrough"
    elif c == "|":
        if not source.startswith("||", i):
            raise _reserved(c)
        kind = "spoiler"
        i += 1
    elif c == "[":
        kind = "text_link"
    elif c == "`":
        if source.startswith("```", i):
            i += 3
            kind = "pre"
            end = i
            while end < n and source[end] not in _SPACES and source[end] != "`":
                end += 1
            if end != i and end < n and source[end] != "`":
                kind = "pre_code"
                argument = source[i:end]
                i = end
            if i < n and source[i] in "\r\n":
                if i + 1 < n and source[i + 1] in "\r\n" and source[i] != source[i + 1]:
                    i += 2
                else:
                    i += 1
            stack.append(_MdOpen(kind, argument, out.offset, byte(begin), len(out.parts)))
            return i
        kind = "code"
    elif c == "!" and source.startswith("![", i):
        kind = "custom_emoji"
        i += 1
    else:
        raise _reserved(c)
    stack.append(_MdOpen(kind, argument, out.offset, byte(begin), len(out.parts)))
    return i + 1


def _md_url(source: str, i: int, byte: _ByteOffsets) -> tuple[int, str | None]:
    """``i`` points at ``]``; returns the index after the link and its URL (None without ``(...)``)."""
    n = len(source)
    if i + 1 < n and source[i + 1] == "(":
        url_begin = i + 1
        i += 2
        chars: list[str] = []
        while i < n and source[i] != ")":
            if source[i] == "\\" and i + 1 < n and 0 < ord(source[i + 1]) <= 126:
                chars.append(source[i + 1])
                i += 2
                continue
            chars.append(source[i])
            i += 1
        if i >= n:
            raise ParseError(f"Can't find end of a URL at byte offset {byte(url_begin)}")
        return i + 1, "".join(chars)
    return i + 1, None


# ----- Markdown (legacy)


def parse_markdown(source: str) -> tuple[str, list[Entity]]:
    """Telegram's legacy ``parse_mode=Markdown`` (no nesting, ``\\`` escapes only ``_*`[``)."""
    out = _Builder()
    entities: list[Entity] = []
    byte = _ByteOffsets(source)
    n = len(source)
    i = 0
    while i < n:
        c = source[i]
        if c == "\\" and i + 1 < n and source[i + 1] in "_*`[":
            out.add(source[i + 1])
            i += 2
            continue
        if c not in "_*`[":
            out.add(c)
            i += 1
            continue
        begin = i
        start = out.offset
        if c == "`" and source.startswith("```", i):
            i += 3
            lang_end = i
            while lang_end < n and source[lang_end] not in _SPACES and source[lang_end] != "`":
                lang_end += 1
            language = ""
            if lang_end != i and lang_end < n and source[lang_end] != "`":
                language = source[i:lang_end]
                i = lang_end
            end = source.find("```", i)
            if end < 0:
                raise ParseError(f"Can't find end of the entity starting at byte offset {byte(begin)}")
            body = source[i:end]
            if body.startswith("\n"):
                body = body[1:]
            out.add(body)
            entity: Entity = {"type": "pre", "offset": start, "length": out.offset - start}
            if language:
                entity["language"] = language
            if entity["length"] > 0:
                entities.append(entity)
            i = end + 3
            continue
        close = "]" if c == "[" else c
        end = source.find(close, i + 1)
        if end < 0:
            raise ParseError(f"Can't find end of the entity starting at byte offset {byte(begin)}")
        out.add(source[i + 1 : end])
        length = out.offset - start
        i = end + 1
        if c == "[":
            url: str | None = None
            if i < n and source[i] == "(":
                close_paren = source.find(")", i)
                if close_paren < 0:
                    raise ParseError(f"Can't find end of a URL at byte offset {byte(i)}")
                url = source[i + 1 : close_paren]
                i = close_paren + 1
            link = link_entity(url or source[begin + 1 : end], start, length) if length > 0 else None
            if link is not None:
                entities.append(link)
            continue
        kind = {"_": "italic", "*": "bold", "`": "code"}[c]
        if length > 0:
            entities.append({"type": kind, "offset": start, "length": length})
    return out.text(), entities


# ----- normalisation

_TYPE_ORDER = {
    "blockquote": 0, "expandable_blockquote": 0, "pre": 1, "code": 2, "text_link": 3, "text_mention": 3,
    "url": 3, "email": 3, "phone_number": 3, "mention": 3, "hashtag": 3, "cashtag": 3, "bot_command": 3,
    "custom_emoji": 4, "bold": 5, "italic": 6, "underline": 7, "strikethrough": 8, "spoiler": 9,
}  # fmt: skip
KNOWN_ENTITY_TYPES = frozenset(_TYPE_ORDER)
_AUTO_BLOCKERS = frozenset(
    {
        "pre", "code", "text_link", "text_mention", "url", "email", "phone_number", "mention", "hashtag",
        "cashtag", "bot_command", "custom_emoji",
    }
)  # fmt: skip

_AUTO_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("url", re.compile(r"(?<![\w@/.])(?:https?://)[^\s<>\"]+[^\s<>\".,;:!?)\]'»]", re.IGNORECASE)),
    ("email", re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w@])")),
    ("bot_command", re.compile(r"(?<![\w/<>])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/@])")),
    ("mention", re.compile(r"(?<![\w@])@[A-Za-z0-9_]{3,32}(?![\w@])")),
    ("hashtag", re.compile(r"(?<![\w#])#(?=\w*[^\W\d])\w{1,256}")),
    ("cashtag", re.compile(r"(?<![\w$])\$(?:1INCH|[A-Z]{1,8})(?![\w$])")),
]


def find_auto_entities(text: str) -> list[Entity]:
    """Entities Telegram detects by itself: urls, e-mails, /commands, @mentions, #hashtags, $CASHTAGS."""
    found: list[tuple[int, int, str]] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in _AUTO_PATTERNS:
        for m in pattern.finditer(text):
            start, end = m.span()
            if any(start < t_end and t_start < end for t_start, t_end in taken):
                continue
            taken.append((start, end))
            found.append((start, end, kind))
    if not found:
        return []
    found.sort()
    result: list[Entity] = []
    pos = 0
    u16 = 0
    for start, end, kind in found:
        u16 += utf16_len(text[pos:start])
        length = utf16_len(text[start:end])
        result.append({"type": kind, "offset": u16, "length": length})
        u16 += length
        pos = end
    return result


def sort_entities(entities: list[Entity]) -> list[Entity]:
    return sorted(entities, key=lambda e: (e["offset"], -e["length"], _TYPE_ORDER.get(e["type"], 99)))


def finalize(text: str, entities: list[Entity], *, detect: bool = True) -> tuple[str, list[Entity]]:
    """Trim surrounding whitespace, clip entities, drop empty ones, add auto-detected ones, sort."""
    stripped_left = text.lstrip(_SPACES)
    cut = utf16_len(text[: len(text) - len(stripped_left)])
    new_text = stripped_left.rstrip(_SPACES)
    total = utf16_len(new_text)
    result: list[Entity] = []
    for entity in entities:
        start = max(entity["offset"] - cut, 0)
        end = min(entity["offset"] + entity["length"] - cut, total)
        if end <= start:
            continue
        fixed = {k: v for k, v in entity.items() if not k.startswith("_")}
        fixed["offset"] = start
        fixed["length"] = end - start
        result.append(fixed)
    result = _merge_formatting(_drop_nested(_drop_nested(_drop_inside_code(result), _LINKS), _QUOTES))
    if detect and new_text:
        blockers = [(e["offset"], e["offset"] + e["length"]) for e in result if e["type"] in _AUTO_BLOCKERS]
        for auto in find_auto_entities(new_text):
            a_start, a_end = auto["offset"], auto["offset"] + auto["length"]
            if not any(a_start < b_end and b_start < a_end for b_start, b_end in blockers):
                result.append(auto)
    return new_text, sort_entities(result)


_MERGEABLE = frozenset({"bold", "italic", "underline", "strikethrough", "spoiler"})


def _drop_inside_code(entities: list[Entity]) -> list[Entity]:
    """``pre`` and ``code`` can't contain other entities (blockquotes may contain them)."""
    codes = sorted(
        (e for e in entities if e["type"] in ("pre", "code")),
        key=lambda e: (e["offset"], -e["length"], e["type"] != "pre"),
    )
    if not codes:
        return entities
    kept_codes: list[Entity] = []
    for e in codes:
        if not any(_inside(e, k) for k in kept_codes):
            kept_codes.append(e)
    keep_ids = {id(e) for e in kept_codes}
    result = []
    for e in entities:
        if e["type"] in ("pre", "code"):
            if id(e) in keep_ids:
                result.append(e)
        elif e["type"] in ("blockquote", "expandable_blockquote") or not any(
            _inside(e, k) for k in kept_codes
        ):
            result.append(e)
    return result


_LINKS = frozenset({"text_link", "text_mention"})
_QUOTES = frozenset({"blockquote", "expandable_blockquote"})


def _drop_nested(entities: list[Entity], kinds: frozenset[str]) -> list[Entity]:
    """Links can't contain links and quotes can't contain quotes: keep the outer one."""
    kept: list[Entity] = []
    # an outer tag closes after its inner ones, so it comes later in parse order: look at it first
    for entity in reversed(entities):
        if entity["type"] in kinds and any(k["type"] in kinds and _inside(entity, k) for k in kept):
            continue
        kept.append(entity)
    kept.reverse()
    return kept


def _inside(inner: Entity, outer: Entity) -> bool:
    return (
        outer["offset"] <= inner["offset"]
        and inner["offset"] + inner["length"] <= outer["offset"] + outer["length"]
    )


def _merge_formatting(entities: list[Entity]) -> list[Entity]:
    """Union overlapping or adjacent entities of the same formatting type, as Telegram does."""
    result = [e for e in entities if e["type"] not in _MERGEABLE]
    for kind in _MERGEABLE:
        spans = sorted((e["offset"], e["offset"] + e["length"]) for e in entities if e["type"] == kind)
        merged: list[list[int]] = []
        for start, end in spans:
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        result.extend({"type": kind, "offset": s, "length": e - s} for s, e in merged)
    return result


def parse(text: str, parse_mode: str | None) -> tuple[str, list[Entity]]:
    """Parse ``text`` in ``parse_mode`` (None/"" = plain) and normalise it as Telegram does."""
    mode = (parse_mode or "").strip().lower()
    if mode == "html":
        raw, entities = parse_html(text)
    elif mode == "markdownv2":
        raw, entities = parse_markdown_v2(text)
    elif mode == "markdown":
        raw, entities = parse_markdown(text)
    elif mode in ("", "none"):
        raw, entities = text, []
    else:
        raise ParseError("Unsupported parse_mode")  # the caller turns this into "unsupported parse_mode"
    return finalize(raw, entities)


def validate_entities(text: str, raw: Any) -> list[Entity]:
    """Check a user-supplied ``entities`` list and return clean entity dicts (clipped to the text)."""
    if not isinstance(raw, list):
        raise ParseError("Can't parse entities JSON object")
    total = utf16_len(text)
    result: list[Entity] = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise ParseError('Can\'t parse MessageEntity: Field "type" must be of type String')
        try:
            offset = int(item["offset"])
            length = int(item["length"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ParseError('Can\'t parse MessageEntity: Field "offset" must be of type Number') from exc
        kind = item["type"]
        if kind not in KNOWN_ENTITY_TYPES:
            continue
        if offset < 0 or length <= 0 or offset >= total:
            continue
        entity: Entity = {"type": kind, "offset": offset, "length": min(length, total - offset)}
        if kind == "text_link":
            url = check_link(str(item.get("url", "")))
            if url is None:
                continue
            entity["url"] = url
        elif kind == "text_mention":
            user = item.get("user")
            if not isinstance(user, dict) or "id" not in user:
                continue
            entity["user"] = user
        elif kind == "pre" and item.get("language"):
            entity["language"] = str(item["language"])
        elif kind == "custom_emoji":
            entity["custom_emoji_id"] = str(item.get("custom_emoji_id", ""))
        result.append(entity)
    return result


# ----- rendering

_RENDER_TAGS = {
    "bold": ("<b>", "</b>"), "italic": ("<i>", "</i>"), "underline": ("<u>", "</u>"),
    "strikethrough": ("<s>", "</s>"), "spoiler": ("<tg-spoiler>", "</tg-spoiler>"),
    "code": ("<code>", "</code>"), "blockquote": ("<blockquote>", "</blockquote>"),
    "expandable_blockquote": ("<blockquote expandable>", "</blockquote>"),
}  # fmt: skip
_SAFE_HREF = frozenset({"http", "https", "tg", "ton", "tonsite", "ftp", "mailto"})


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _href(url: str) -> str | None:
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme not in _SAFE_HREF:
        return None
    return html.escape(url, quote=True)


def _tags(entity: Entity) -> tuple[str, str]:
    kind = entity["type"]
    if kind in _RENDER_TAGS:
        return _RENDER_TAGS[kind]
    if kind == "pre":
        language = entity.get("language")
        if language:
            return f'<pre><code class="language-{html.escape(str(language), quote=True)}">', "</code></pre>"
        return "<pre>", "</pre>"
    if kind == "text_link":
        href = _href(str(entity.get("url", "")))
        return (f'<a href="{href}">', "</a>") if href else ("", "")
    if kind == "text_mention":
        user_id = int(entity.get("user", {}).get("id", 0))
        return f'<a href="tg://user?id={user_id}">', "</a>"
    if kind == "custom_emoji":
        emoji_id = html.escape(str(entity.get("custom_emoji_id", "")), quote=True)
        return f'<tg-emoji emoji-id="{emoji_id}">', "</tg-emoji>"
    return "", ""  # auto-detected entities (url, mention, ...) render as plain text


def render_html(text: str, entities: list[Entity] | None) -> str:
    """Render ``text`` + ``entities`` as Telegram-compatible, browser-safe HTML.

    Parsing the result with :func:`parse_html` gives back the same text and (formatting) entities; overlapping
    entities are split into properly nested tags.
    """
    tagged = [e for e in (entities or []) if _tags(e) != ("", "")]
    if not tagged:
        return _escape(text)
    # UTF-16 boundaries -> python indexes
    bounds = sorted({0, *(e["offset"] for e in tagged), *(e["offset"] + e["length"] for e in tagged)})
    index_of: dict[int, int] = {}
    u16 = 0
    bi = 0
    for idx, ch in enumerate(text):
        while bi < len(bounds) and bounds[bi] <= u16:
            index_of[bounds[bi]] = idx
            bi += 1
        u16 += _u16(ch)
    for b in bounds[bi:]:
        index_of[b] = len(text)
    order = sort_entities(tagged)
    parts: list[str] = []
    stack: list[tuple[Entity, int]] = []  # (entity, end)
    pending = list(reversed(order))  # pop() gives the next entity to open
    for k, point in enumerate(bounds):
        to_open: list[tuple[Entity, int]] = []
        # close everything that ends here, and what is above it (re-opened below)
        while any(end <= point for _, end in stack):
            entity, end = stack.pop()
            parts.append(_tags(entity)[1])
            if end > point:
                to_open.append((entity, end))
        while pending and pending[-1]["offset"] == point:
            entity = pending.pop()
            to_open.append((entity, entity["offset"] + entity["length"]))
        # formatting that ends before a new link/code/quote moves inside it, so that one is not split
        latest = max((end for e, end in to_open if e["type"] not in _MERGEABLE), default=0)
        while stack and stack[-1][0]["type"] in _MERGEABLE and stack[-1][1] < latest:
            entity, end = stack.pop()
            parts.append(_tags(entity)[1])
            to_open.append((entity, end))
        to_open.sort(key=lambda item: (-item[1], item[0]["offset"], _TYPE_ORDER.get(item[0]["type"], 99)))
        for entity, end in to_open:
            parts.append(_tags(entity)[0])
            stack.append((entity, end))
        if k + 1 < len(bounds):
            parts.append(_escape(text[index_of[point] : index_of[bounds[k + 1]]]))
        else:
            parts.append(_escape(text[index_of[point] :]))
    while stack:
        parts.append(_tags(stack.pop()[0])[1])
    return "".join(parts)
