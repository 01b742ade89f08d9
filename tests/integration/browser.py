"""Helpers for the browser tests (the ``browser`` fixture is in conftest.py)."""

from __future__ import annotations

from typing import Any


def log_in(browser: Any, url: str, email: str, password: str) -> Any:
    """A new page, logged in through the log-in form, on the chat UI."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{url}/ui/")
    page.wait_for_url("**/login**")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")
    try:
        page.wait_for_selector("text=Signed in as", timeout=60_000)
    except Exception as e:
        raise AssertionError(
            f"{email} not signed in at {page.url}: {page.inner_text('body')[:300]}"
        ) from e
    return page
