from __future__ import annotations

import re

import pytest

from handlers.commands import COMMANDS
from keyboards.menu import SECTIONS
from services.i18n import Html, I18n, plural_form

PLACEHOLDER = re.compile(r"{(\w+)}")


@pytest.fixture(scope="module")
def hub() -> I18n:
    return I18n()


def test_we_ship_english_russian_and_spanish(hub: I18n) -> None:
    assert set(hub.locales) >= {"en", "ru", "es"}


def test_no_key_is_missing_in_any_locale(hub: I18n) -> None:
    assert hub.missing_keys() == {}


def test_placeholders_agree_across_locales(hub: I18n) -> None:
    reference = hub.catalogs["en"]
    for locale, catalog in hub.catalogs.items():
        for key, value in catalog.items():
            assert set(PLACEHOLDER.findall(str(value))) == set(PLACEHOLDER.findall(str(reference[key]))), (
                locale,
                key,
            )


def test_every_menu_section_and_command_has_text(hub: I18n) -> None:
    for locale in hub.locales:
        t = hub.translator(locale)
        for section in SECTIONS:
            assert t.has(f"menu.{section}")
        for command in COMMANDS:
            description = t(f"commands.{command}")
            assert 3 <= len(description) <= 256


def test_parameters_are_html_escaped_unless_marked_safe(hub: I18n) -> None:
    t = hub.translator("en")
    assert "&lt;script&gt;" in t("start.greeting_back", name="<script>")
    assert "<i>x</i>" in t("start.greeting_back", name=Html("<i>x</i>"))


def test_locale_resolution_order(hub: I18n) -> None:
    assert hub.resolve("es", "ru-RU", "en") == "es"
    assert hub.resolve(None, "ru-RU", "en") == "ru"
    assert hub.resolve(None, "pt-br", "es") == "es"
    assert hub.resolve("xx", None, "en") == "en"


def test_unknown_key_is_shown_as_is(hub: I18n) -> None:
    assert hub.translator("ru")("no.such.key") == "no.such.key"


@pytest.mark.parametrize(
    ("locale", "count", "form"),
    [("en", 1, "one"), ("en", 2, "other"), ("ru", 1, "one"), ("ru", 3, "few"), ("ru", 11, "many"),
     ("ru", 21, "one"), ("ru", 25, "many"), ("es", 1, "one"), ("es", 0, "other")],
)
def test_plural_forms(locale: str, count: int, form: str) -> None:
    assert plural_form(locale, count) == form


def test_every_order_parser_error_has_a_message(hub: I18n) -> None:
    from services.trading.parser import REASONS

    for locale in hub.locales:
        for reason in REASONS:
            assert hub.translator(locale).has(f"trade.parse.{reason}"), (locale, reason)
