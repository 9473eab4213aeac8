"""Browser fixtures live in browser_env.py (importable by name from the tests)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from browser_env import browser, page_factory, screenshot_dir, server, worker_endpoint  # noqa: E402

__all__ = ["browser", "page_factory", "screenshot_dir", "server", "worker_endpoint"]
