"""The report's locale (spec ``locale``): its numbers, dates and fixed words.

Babel supplies the locale's data (separators, decimal mark, date and time patterns); the fixed
words of the templates ("Page 1 of 2", "Generated ... · run ...", "Showing X of Y rows ...")
come from the gettext catalogs shipped in ``translations/<lang>/LC_MESSAGES/nbpress.po``,
through Jinja's i18n extension (``{% trans %}``, ``_()``). A locale Babel knows but without a
catalog (``es_ES``) gets its numbers and dates, and the English words, with a warning.

The default, ``en``, writes exactly what the toolkit wrote before locales: ``1,234.50`` and ISO
dates (``2026-11-16 06:00 UTC``); any other locale gets Babel's medium dates (``16.11.2026``).
Numbers are formatted by Python (``{:,.2f}``: same rounding for every locale), then their
separators, decimal mark and minus sign are swapped for the locale's; digits stay grouped in
threes (CLDR's Indian grouping, say, is not followed).
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markupsafe import Markup

__all__ = ["DEFAULT_LOCALE", "ReportLocale", "check_locale", "translations", "install"]

log = logging.getLogger(__name__)

DEFAULT_LOCALE = "en"
CATALOGS = Path(__file__).with_name("translations")
DOMAIN = "nbpress"

# The footer's msgid: "%(page)s" and "%(pages)s" become CSS counters (see ReportLocale.page_footer_css).
PAGE_FOOTER = "Page %(page)s of %(pages)s"
_COUNTER = re.compile(r"%\((page|pages)\)s")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)?$")


def check_locale(text: str) -> str:
    """``text`` as Babel names it (``de-de`` -> ``de_DE``); ValueError if Babel does not know it."""
    from babel import Locale, UnknownLocaleError

    try:
        return str(Locale.parse(text.strip().replace("-", "_")))
    except (UnknownLocaleError, ValueError, TypeError):
        raise ValueError(
            f"unknown locale {text!r} (expected a language, or language_TERRITORY, that Babel knows, e.g. en, de_DE, fr_FR)"
        ) from None


def _catalog_file(locale: str) -> Path | None:
    """The catalog for ``de_CH``: ``de_CH`` if shipped, else ``de``."""
    for name in (locale, locale.split("_")[0]):
        path = CATALOGS / name / "LC_MESSAGES" / f"{DOMAIN}.po"
        if path.is_file():
            return path
    return None


@functools.lru_cache(maxsize=None)
def translations(locale: str):
    """The fixed words in ``locale``: Babel ``Translations`` read from the shipped .po file, or
    ``NullTranslations`` (the English msgids) with a warning when none is shipped."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po
    from babel.support import NullTranslations, Translations

    path = _catalog_file(locale)
    if path is None:
        if locale.split("_")[0] != "en":
            log.warning("no nbpress translations for locale %s: the report's fixed words stay in English", locale)
        return NullTranslations()
    with path.open("rb") as po:
        catalog = read_po(po, locale=locale, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)  # Translations reads the compiled form; the .po stays the one source
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


@dataclass(frozen=True)
class ReportLocale:
    """Formats a report's numbers and dates, and its footer, in one locale."""

    name: str
    _swap: dict[int, str]  # Python's ',', '.', '-' -> the locale's

    @classmethod
    @functools.lru_cache(maxsize=None)
    def of(cls, name: str = DEFAULT_LOCALE) -> ReportLocale:
        from babel import numbers

        name = check_locale(name)
        symbols = {",": numbers.get_group_symbol(name), ".": numbers.get_decimal_symbol(name),
                   "-": numbers.get_minus_sign_symbol(name)}
        return cls(name, {ord(k): v for k, v in symbols.items() if k != v})

    @property
    def iso_dates(self) -> bool:
        return self.name == DEFAULT_LOCALE

    # --- numbers ---

    def integer(self, value: int) -> str:
        """Table cells of integer columns: ``1,234``."""
        text = f"{value:,}"
        return text.translate(self._swap) if self._swap else text  # English: no per-cell translate

    def symbols(self, text: str) -> str:
        """Python's ``,``, ``.`` and ``-`` in a formatted number swapped for the locale's."""
        return text.translate(self._swap) if self._swap else text

    def decimal(self, value: float) -> str:
        """Table cells of float columns: ``1,234.50``."""
        text = f"{value:,.2f}"
        return text.translate(self._swap) if self._swap else text

    def number(self, value: Any, digits: int = 0) -> str:
        """The ``number`` filter: grouped, ``digits`` decimals (2 for a float that is not whole)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return str(value)
        if isinstance(value, float) and digits == 0 and not value.is_integer():
            digits = 2
        return f"{value:,.{digits}f}".translate(self._swap)

    # --- dates ---

    def date(self, value: dt.date) -> str:
        if self.iso_dates:
            return value.isoformat()
        from babel.dates import format_date

        # No-break spaces: "16 nov. 2026" is one word to line breaking (a narrow parameter box wraps it otherwise).
        return format_date(value, "medium", locale=self.name).replace(" ", "\u00a0")

    def datetime(self, value: dt.datetime, zone: str = "") -> str:
        """Date and minutes (``16.11.2026 06:05``); ``zone`` is appended as written (``UTC``)."""
        if self.iso_dates:
            text = value.strftime("%Y-%m-%d %H:%M")
        else:
            from babel.dates import format_time

            text = f"{self.date(value.date())} {format_time(value.time(), 'short', locale=self.name)}"
        return f"{text} {zone}" if zone else text

    def shown_value(self, value: Any) -> str:
        """A parameter value as the PDF shows it: ISO dates (run.json's form) as dates, lists joined."""
        if isinstance(value, str):
            if _ISO_DATE.match(value):
                return self.date(dt.date.fromisoformat(value))
            if _ISO_DATETIME.match(value):
                return self.datetime(dt.datetime.fromisoformat(value.replace("Z", "+00:00")))
            return value
        if isinstance(value, (list, tuple)):
            return ", ".join(self.shown_value(v) for v in value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value).translate(self._swap)  # no grouping: a parameter reads as typed
        return str(value)

    def gettext(self, message: str) -> str:
        """A fixed word of the toolkit's own (not a template's) in this locale."""
        return translations(self.name).gettext(message)

    # --- the footer ---

    def page_footer_css(self) -> Markup:
        """The footer as a CSS ``content`` value: ``"Seite " counter(page) " von " counter(pages)``.

        Translators see one sentence (word order is theirs); the placeholders become counters.
        """
        text = translations(self.name).gettext(PAGE_FOOTER)
        pieces = []
        for i, piece in enumerate(_COUNTER.split(text)):
            if i % 2:
                pieces.append(f"counter({piece})")
            elif piece:
                pieces.append(_css_string(piece))
        return Markup(" ".join(pieces))


def _css_string(text: str) -> str:
    """A CSS string literal that cannot end the string, the rule or the <style> element."""
    escaped = "".join(ch if ch.isalnum() or ch in " .,:;-" else f"\\{ord(ch):x} " for ch in text)
    return f'"{escaped}"'


def install(env, locale: ReportLocale) -> None:
    """Give a Jinja environment the locale: ``{% trans %}``/``_()``, the ``number``,
    ``date``, ``datetime`` and ``shown`` filters, and ``page_footer_css()``."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_translations(translations(locale.name), newstyle=True)
    env.filters["number"] = locale.number
    env.filters["date"] = locale.date
    env.filters["datetime"] = locale.datetime
    env.filters["shown"] = locale.shown_value
    env.globals["page_footer_css"] = locale.page_footer_css
