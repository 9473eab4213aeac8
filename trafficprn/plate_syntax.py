"""Plate syntax: templates of licence plates, region presets, and `privacy.plate_format`.

A template is written with `L` (a letter), `D` (a digit), `*` (either), any other letter
or digit a literal, and anything else (``-``, space) a separator: "LLL-DDDD" has 7 slots.
A format spec (`privacy.plate_format`, `trafficprn plate --format`) is one of

- a template ("LLL-DDDD"), or several separated by commas or given as a list;
- a region name: `us`, `eu` (the union of the European country presets), `br`, or a
  country (`de`, `fr`, `it`, `es`, `nl`, `pl`, `gb`, ...; `regions()` lists them);
- `auto`: every preset; the reader scores readings against all of them;
- `none` (or an empty string): no syntax, the raw read is kept.

The presets are the common current and recent patterns of each region, from the public
descriptions of its plate systems (not fitted to any evaluation set). The sim renders a
spec's first template. This module is pure (stdlib only) and sits at the config layer,
so that `config`, `sim` and `analytics` can all use it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from trafficprn.errors import ConfigError

LETTER, DIGIT, ANY = "L", "D", "*"
FIELD = "privacy.plate_format"
AUTO_RENDER = "LLL-DDDD"
US_RARE_LETTERS = "OIQ"


def _german() -> tuple[str, ...]:
    """District (1-3 letters), 1-2 letters, 1-4 digits; 8 characters at most."""
    out = []
    for district, letters, digits in itertools.product((1, 2, 3), (1, 2), (1, 2, 3, 4)):
        if district + letters + digits <= 8:
            out.append("L" * district + "-" + "L" * letters + "-" + "D" * digits)
    return tuple(out)


US = (
    "LLL-DDDD", "DLLL-DDD", "LLL-DDD", "DDD-LLL", "LL-DDDD", "LL-DDDDD", "DDDD-LL", "DDD-DDD",
    "DDDDDDD", "LDD-LLL", "LLL-DDL", "DLL-DDD", "DDL-DDD", "LDDDDDD", "LLLL-DDD",
    "DLDDDDD", "DDDLL", "LLDDDL", "DDD-LDDD", "DDLLDD", "LDDDLL",
)  # fmt: skip
COUNTRIES: dict[str, tuple[str, ...]] = {
    "de": _german(),
    "fr": ("LL-DDD-LL", "DDD-LLL-DD", "DDDD-LL-DD", "DDD-LL-DD"),
    "it": ("LL-DDD-LL",),
    "es": ("DDDD-LLL", "L-DDDD-LL", "LL-DDDD-LL"),
    "nl": (
        "LL-DD-DD", "DD-DD-LL", "DD-LL-DD", "LL-DD-LL", "LL-LL-DD", "DD-LL-LL", "DD-LLL-D",
        "D-LLL-DD", "LL-DDD-L", "L-DDD-LL", "LLL-DD-L", "L-DD-LLL", "D-LL-DDD", "DDD-LL-D",
    ),
    "pl": ("LL-DDDDD", "LL-DDDDL", "LL-DDDLL", "LL-DLDDD", "LL-DLLDD", "LLL-DDDD", "LLL-DDLL", "LLL-DLDD"),
    "gb": ("LLDD-LLL", "LDDD-LLL", "LLL-DDDL"),
    "ie": ("DD-L-DDDD", "DD-L-DDDDD", "DD-LL-DDDD", "DD-LL-DDDDD", "DDD-L-DDDD", "DDD-LL-DDDD"),
    "be": ("D-LLL-DDD", "LLL-DDD"),
    "lu": ("LL-DDDD", "DDDDDD"),
    "pt": ("DD-LL-DD", "LL-DD-LL", "DD-DD-LL", "LL-DD-DD"),
    "at": ("L-DDDD-L", "LL-DDD-LL", "LL-DDDD-L", "L-DDDDD-L", "LL-DDDDD"),
    "ch": ("LL-DDDDD", "LL-DDDDDD", "LL-DDDD"),
    "cz": ("DLL-DDDD", "DLD-DDDD"),
    "sk": ("LL-DDD-LL",),
    "hu": ("LLL-DDD", "LL-LL-DDD"),
    "si": ("LL-LL-DDD", "LL-DD-LLL"),
    "hr": ("LL-DDD-LL", "LL-DDDD-LL", "LL-DDDD-L"),
    "ro": ("LL-DD-LLL", "L-DD-LLL", "L-DDD-LLL"),
    "bg": ("LL-DDDD-LL", "L-DDDD-LL"),
    "gr": ("LLL-DDDD",),
    "dk": ("LL-DDDDD",),
    "se": ("LLL-DDD", "LLL-DDL"),
    "no": ("LL-DDDDD",),
    "fi": ("LLL-DDD", "LL-DDD"),
    "ee": ("DDD-LLL",),
    "lv": ("LL-DDDD", "LL-DDD"),
    "lt": ("LLL-DDD",),
}
EU_COUNTRIES = tuple(COUNTRIES)
BR = ("LLL-DDDD", "LLL-DLDD")  # old grey plates, and Mercosur (2018-)
PRESETS: dict[str, tuple[str, ...]] = {"us": US, **COUNTRIES, "br": BR}


@dataclass(frozen=True)
class PlateTemplate:
    """One plate pattern. pattern: as written ("LLL-DDDD"); slots: without separators."""

    pattern: str
    region: str = "custom"

    @property
    def rare_letters(self) -> str:
        """Letters the region's serials mostly leave out (the decoder's glyph prior): O, I
        and Q in the US, where they would be confused with 0 and 1; none elsewhere."""
        return US_RARE_LETTERS if self.region == "us" else ""

    @property
    def slots(self) -> str:
        return slots_of(self.pattern)

    def __len__(self) -> int:
        return len(self.slots)

    def matches(self, text: str) -> bool:
        """True when the normalised text fits the slots exactly."""
        slots = self.slots
        return len(text) == len(slots) and all(_slot_takes(s, c) for s, c in zip(slots, text, strict=True))


def _slot_takes(slot: str, ch: str) -> bool:
    if slot == LETTER:
        return ch.isalpha()
    if slot == DIGIT:
        return ch.isdigit()
    return slot in (ANY, ch)


def slots_of(pattern: str) -> str:
    """'LLL-DDDD' -> 'LLLDDDD' (separators out, upper case; `*` kept)."""
    return "".join(c for c in pattern.upper() if c.isalnum() or c == ANY)


@dataclass(frozen=True)
class PlateSyntax:
    """A parsed format spec: the templates a reading may take, in the order given.

    auto: built from `auto` (every preset).
    """

    templates: tuple[PlateTemplate, ...]
    spec: str
    auto: bool = False

    @property
    def first(self) -> PlateTemplate:
        """The template the sim renders: the first given (for `auto`, LLL-DDDD)."""
        return PlateTemplate(AUTO_RENDER, "us") if self.auto else self.templates[0]

    @property
    def custom(self) -> bool:
        """True when every template was written out by the site (no region, no auto)."""
        return all(t.region == "custom" for t in self.templates)

    @property
    def rare_letters(self) -> str:
        """The free reading's rare letters: the US ones when the syntax holds US templates."""
        return next((t.rare_letters for t in self.templates if t.rare_letters), "")

    @property
    def lengths(self) -> frozenset[int]:
        return frozenset(len(t) for t in self.templates)

    def matches(self, text: str) -> bool:
        return any(t.matches(text) for t in self.templates)


def regions() -> list[str]:
    """The region names a spec may use: `auto`, `us`, `eu`, `br` and the countries."""
    return ["auto", "us", "eu", "br", *EU_COUNTRIES]


def _region_templates(name: str) -> list[PlateTemplate]:
    if name == "auto":
        names = ["us", *EU_COUNTRIES, "br"]
    elif name == "eu":
        names = list(EU_COUNTRIES)
    else:
        names = [name]
    return [PlateTemplate(p, n) for n in names for p in PRESETS[n]]


def _split(spec: str | Sequence[str]) -> list[str]:
    items = [spec] if isinstance(spec, str) else list(spec)
    return [part.strip() for item in items for part in str(item).split(",") if part.strip()]


def parse_plate_format(spec: str | Sequence[str] | None, field: str = FIELD) -> PlateSyntax | None:
    """Parse a format spec (see the module doc); None for no syntax. ConfigError names `field`."""
    if spec is None:
        return None
    parts = _split(spec)
    if not parts or [p.lower() for p in parts] == ["none"]:
        return None
    templates: list[PlateTemplate] = []
    for part in parts:
        if part.lower() in (*PRESETS, "eu", "auto"):
            templates.extend(_region_templates(part.lower()))
            continue
        if not any(c in (LETTER, DIGIT, ANY) for c in slots_of(part)):
            raise ConfigError(
                f"plate format {part!r} is neither a template (L letter, D digit, * either, e.g. 'LLL-DDDD') "
                f"nor a region ({', '.join(regions())})",
                field=field,
            )
        if len(slots_of(part)) > 10:
            raise ConfigError(f"plate format {part!r} has more than 10 slots", field=field)
        templates.append(PlateTemplate(part.upper(), "custom"))
    unique = _unique(templates)
    label = spec if isinstance(spec, str) else ",".join(parts)
    return PlateSyntax(tuple(unique), label, auto=any(p.lower() == "auto" for p in parts))


def _unique(templates: Iterable[PlateTemplate]) -> list[PlateTemplate]:
    """First occurrence of each slot pattern and glyph prior: a pattern two regions share
    is kept once per prior (US: O, I, Q rare; others: none), so each region reads as its own."""
    seen: set[tuple[str, str]] = set()
    out = []
    for t in templates:
        if (t.slots, t.rare_letters) not in seen:
            seen.add((t.slots, t.rare_letters))
            out.append(t)
    return out


def first_template(spec: str | Sequence[str] | None, default: str = "LLL-DDDD") -> str:
    """The template the sim renders for a spec: its first one (the default without a syntax)."""
    syntax = parse_plate_format(spec)
    return default if syntax is None else syntax.first.pattern
