"""Translations: one YAML file per language under `locales/<lang>/`, flat dotted keys.

Parameters are HTML-escaped (messages are sent with HTML parse mode) unless wrapped in `Html`.
A value may be a mapping of plural forms (`one`, `few`, `many`, `other`) chosen by the `count` parameter.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

DEFAULT_LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
PLURAL_FORMS = ("zero", "one", "two", "few", "many", "other")


class Html(str):
    """A string that is already safe HTML and must not be escaped again."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Msg:
    """A parameter that is itself a message, translated in the language of the message it goes into
    (services that notify users pass these: they do not know the user's language)."""

    key: str
    params: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class MsgList:
    """Several messages joined, each translated like `Msg`."""

    items: tuple[Msg, ...]
    separator: str = ", "
    empty: str = "—"


def plural_form(locale: str, count: int | Decimal | float) -> str:
    """CLDR cardinal plural category for the languages we ship."""
    if isinstance(count, int) or (isinstance(count, Decimal | float) and count == int(count)):
        n = abs(int(count))
    else:
        return "other"
    if locale == "ru":
        if n % 10 == 1 and n % 100 != 11:
            return "one"
        if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
            return "few"
        return "many"
    return "one" if n == 1 else "other"


def _flatten(prefix: str, node: Any, out: dict[str, Any]) -> None:
    if isinstance(node, Mapping) and not (node and set(node) <= set(PLURAL_FORMS)):
        for key, value in node.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), value, out)
    else:
        out[prefix] = node


def load_catalog(directory: Path) -> dict[str, Any]:
    catalog: dict[str, Any] = {}
    for file in sorted(directory.glob("*.yaml")):
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        _flatten("", data, catalog)
    return catalog


@dataclass(frozen=True)
class Translator:
    locale: str
    catalog: Mapping[str, Any]
    fallback: Mapping[str, Any]

    def __call__(self, key: str, /, **params: Any) -> str:
        return self.get(key, **params)

    def get(self, key: str, /, **params: Any) -> str:
        template = self.catalog.get(key, self.fallback.get(key))
        if template is None:
            return key
        if isinstance(template, Mapping):
            count = params.get("count", 0)
            template = template.get(plural_form(self.locale, count), template.get("other", key))
        safe = {name: _escape(self._resolve(value)) for name, value in params.items()}
        try:
            return str(template).format_map(safe)
        except (KeyError, IndexError, ValueError):
            return str(template)

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, Msg):
            return self.get(value.key, **(value.params or {}))
        if isinstance(value, MsgList):
            parts = [self.get(m.key, **(m.params or {})) for m in value.items]
            return value.separator.join(parts) if parts else value.empty
        return value

    def has(self, key: str) -> bool:
        return key in self.catalog or key in self.fallback


def format_decimal(value: Decimal, max_places: int = 8) -> str:
    """Exact, readable: thousands separated, at most `max_places` decimals, no trailing zeros."""
    exponent = value.as_tuple().exponent
    if not value.is_finite():
        return str(value)
    if isinstance(exponent, int) and exponent < -max_places:
        value = value.quantize(Decimal(1).scaleb(-max_places))
    text = f"{value:,f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _escape(value: Any) -> Any:
    if value is None:
        return "—"
    if isinstance(value, Html):
        return value
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, int | float):
        return value
    return html.escape(str(value), quote=False)


class I18n:
    """All catalogs, loaded once; hands out a `Translator` per locale."""

    def __init__(self, locales_dir: Path = DEFAULT_LOCALES_DIR, default_locale: str = "en") -> None:
        self.locales_dir = locales_dir
        self.catalogs: dict[str, dict[str, Any]] = {
            path.name: load_catalog(path) for path in sorted(locales_dir.iterdir()) if path.is_dir()
        }
        if default_locale not in self.catalogs:
            raise ValueError(f"default locale {default_locale!r} has no catalog in {locales_dir}")
        self.default_locale = default_locale
        self._translators = {
            locale: Translator(locale, catalog, self.catalogs[default_locale])
            for locale, catalog in self.catalogs.items()
        }

    @property
    def locales(self) -> tuple[str, ...]:
        return tuple(self.catalogs)

    def translator(self, locale: str | None) -> Translator:
        return self._translators.get(locale or "", self._translators[self.default_locale])

    def match(self, language_code: str | None) -> str | None:
        """Telegram's language_code (`pt-br`, `ru`, `es-419`) to one of our locales, if any."""
        if not language_code:
            return None
        base = language_code.replace("_", "-").split("-")[0].lower()
        return base if base in self.catalogs else None

    def resolve(self, chosen: str | None, language_code: str | None, default: str | None = None) -> str:
        """The user's choice, then Telegram's language_code, then the default."""
        if chosen in self.catalogs:
            return str(chosen)
        return self.match(language_code) or (default if default in self.catalogs else self.default_locale)

    def missing_keys(self) -> dict[str, set[str]]:
        keys = set().union(*(set(c) for c in self.catalogs.values()))
        return {loc: keys - set(cat) for loc, cat in self.catalogs.items() if keys - set(cat)}

    def all_in(self, key: str, locales: Iterable[str] | None = None) -> dict[str, str]:
        return {loc: self.translator(loc).get(key) for loc in (locales or self.locales)}
