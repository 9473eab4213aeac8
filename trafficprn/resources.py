"""Where packaged data lives, both in a source checkout and after `pip install`.

`web/` and `migrations/` sit at the repository root in a checkout; the wheel carries
them inside the package as `trafficprn/_web` and `trafficprn/_migrations`.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def _find(installed: str, checkout: str) -> Path:
    inside = PACKAGE_DIR / installed
    if inside.is_dir():
        return inside
    return PACKAGE_DIR.parent / checkout


def web_dir() -> Path:
    return _find("_web", "web")


def migrations_dir() -> Path:
    return _find("_migrations", "migrations")


def data_dir() -> Path:
    """Bundled data inside the package: cfgs, the model, the demo scene."""
    return PACKAGE_DIR / "data"
