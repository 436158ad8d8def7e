"""Telegram markup: HTML / MarkdownV2 parsing with UTF-16 offsets, and rendering entities back to HTML."""

from __future__ import annotations

import html

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.telegram.markup import (
    ParseError,
    parse,
    parse_html,
    parse_markdown_v2,
    render_html,
    utf16_len,
    utf16_slice,
)

TAGS = ["b", "i", "u", "s", "code", "tg-spoiler", "a", "pre", "blockquote"]
TEXT = st.text(alphabet=st.sampled_from([*"ab Z9<>&\"'\n", "😀", "é", "𝔘", "€", "🚀"]), max_size=6)


@st.composite
def html_tree(draw: st.DrawFn, depth: int = 0) -> tuple[str, str]:
    """(html source, plain text it stands for)."""
    parts = draw(st.lists(st.one_of(TEXT, st.sampled_from(TAGS)) if depth < 3 else TEXT, max_size=4))
    source: list[str] = []
    plain: list[str] = []
    for part in parts:
        if part in TAGS:
            inner_source, inner_plain = draw(html_tree(depth + 1))
            if part == "a":
                source.append(f'<a href="https://example.com/{depth}?q=1&amp;r=2">{inner_source}</a>')
            else:
                source.append(f"<{part}>{inner_source}</{part}>")
            plain.append(inner_plain)
        else:
            source.append(html.escape(part, quote=False))
            plain.append(part)
    return "".join(source), "".join(plain)


@settings(max_examples=300, deadline=None)
@given(html_tree())
def test_html_roundtrip(tree: tuple[str, str]) -> None:
    source, plain = tree
    raw_text, raw_entities = parse_html(source)
    assert raw_text == plain
    for entity in raw_entities:
        assert entity["offset"] >= 0 and entity["offset"] + entity["length"] <= utf16_len(raw_text)
    text, entities = parse(source, "HTML")
    assert text == plain.strip(" \t\n\r\f\v")
    rendered = render_html(text, entities)
    assert parse(rendered, "HTML") == (text, entities)
    assert render_html(*parse(rendered, "HTML")) == rendered  # canonical form is stable


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_plain_text_escapes_and_offsets(value: str) -> None:
    rendered = render_html(value, [])
    assert parse_html(rendered) == (value, [])


def test_utf16_offsets_with_astral_characters() -> None:
    text, entities = parse("😀 <b>𝔘x</b> é <i>🚀</i>", "HTML")
    assert text == "😀 𝔘x é 🚀"
    assert entities == [
        {"type": "bold", "offset": 3, "length": 3},
        {"type": "italic", "offset": 9, "length": 2},
    ]
    assert [utf16_slice(text, e["offset"], e["length"]) for e in entities] == ["𝔘x", "🚀"]


def test_overlapping_entities_render_nested() -> None:
    entities = [{"type": "bold", "offset": 0, "length": 4}, {"type": "italic", "offset": 2, "length": 4}]
    rendered = render_html("abcdef", entities)
    assert rendered == "<b>ab<i>cd</i></b><i>ef</i>"
    assert parse(rendered, "HTML") == ("abcdef", entities)
    # formatting is split rather than a link
    url = "https://t.me/"
    link = [
        {"type": "bold", "offset": 0, "length": 2},
        {"type": "text_link", "offset": 1, "length": 2, "url": url},
    ]
    assert render_html("xyz", link) == f'<b>x</b><a href="{url}"><b>y</b>z</a>'
    assert parse(render_html("xyz", link), "HTML") == ("xyz", link)


def test_pre_code_language_and_links() -> None:
    text, entities = parse('<pre><code class="language-python">x = 1</code></pre>', "HTML")
    assert entities == [{"type": "pre", "offset": 0, "length": 5, "language": "python"}]
    assert render_html(text, entities) == '<pre><code class="language-python">x = 1</code></pre>'
    _, links = parse('<a href="tg://user?id=42">me</a> <a href="javascript:alert(1)">x</a>', "HTML")
    assert [e["type"] for e in links] == ["text_mention"]
    assert (
        render_html("x", [{"type": "text_link", "offset": 0, "length": 1, "url": "javascript:alert(1)"}])
        == "x"
    )


def test_auto_detected_entities() -> None:
    text, entities = parse("/start@cu_bot see https://example.com/x, $BTC #alts @someone", None)
    kinds = [(e["type"], utf16_slice(text, e["offset"], e["length"])) for e in entities]
    assert kinds == [
        ("bot_command", "/start@cu_bot"),
        ("url", "https://example.com/x"),
        ("cashtag", "$BTC"),
        ("hashtag", "#alts"),
        ("mention", "@someone"),
    ]
    _, in_code = parse("<code>/start</code>", "HTML")
    assert [e["type"] for e in in_code] == ["code"]


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("<b>x", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<a href=x>y</a", "Unclosed end tag at byte offset 11"),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        ("<b", "Unclosed start tag at byte offset 0"),
    ],
)
def test_html_errors(source: str, error: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_html(source)
    assert str(info.value) == error


def test_markdown_v2() -> None:
    assert parse_markdown_v2("__u__ ||s|| ~x~") == (
        "u s x",
        [
            {"type": "underline", "offset": 0, "length": 1},
            {"type": "spoiler", "offset": 2, "length": 1},
            {"type": "strikethrough", "offset": 4, "length": 1},
        ],
    )
    text, entities = parse("```python\nprint(1)\n```", "MarkdownV2")
    assert (text, entities) == ("print(1)", [{"type": "pre", "offset": 0, "length": 8, "language": "python"}])
    with pytest.raises(ParseError, match="Can't find end of Italic entity at byte offset 0"):
        parse_markdown_v2("_x")
    with pytest.raises(ParseError, match="Character '!' is reserved"):
        parse_markdown_v2("hi!")
    assert parse("*a* \\*b\\*", "Markdown") == ("a *b*", [{"type": "bold", "offset": 0, "length": 1}])
