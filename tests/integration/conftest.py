"""The ``browser`` fixture: Debian's Chromium under Playwright (no browser download).

Where ``/usr/bin/chromium`` is missing the browser tests skip with a reason, unless
``LANTERN_TEST_REQUIRE_BROWSER=1`` (set by ``.ci/run``, which installs it) makes
that a failure: CI always drives the real browser.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        reason = f"{CHROMIUM} is not installed (apt-get install chromium fonts-noto-cjk)"
        if os.environ.get("LANTERN_TEST_REQUIRE_BROWSER") == "1":
            pytest.fail(f"the browser tests are required here, but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()
