"""The browser UI, driven in Debian's Chromium by Playwright against ``lantern serve``.

An admin logs in, creates a collection, a group and a member, grants the group
read access, uploads the handbook and waits until it is ready; the member logs
in, asks, sees the streamed answer with a citation to the right document and
page, and gives feedback; the member has no admin console; a user in no group
sees no collection. Screenshots go to ``docs/screenshots/`` (shown in the README).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.samples import HERE
from tests.integration.processes import lantern_server

CHROMIUM = "/usr/bin/chromium"
ADMIN = ("root@example.com", "a-long-admin-password")
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with lantern_server(tmp_path_factory.mktemp("ui"), ADMIN) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


def log_in(browser: Any, url: str, email: str, password: str) -> Any:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{url}/ui/")
    page.wait_for_url("**/login**")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Signed in as", timeout=60_000)
    return page


def fill(page: Any, elem_id: str, text: str) -> None:
    page.locator(f"#{elem_id} textarea, #{elem_id} input").first.fill(text)


def wait_text(page: Any, selector: str, text: str, timeout_s: float = 60) -> None:
    """Wait until ``text`` is in the element's visible text (tables render cells twice)."""
    import time

    deadline = time.monotonic() + timeout_s
    while text not in page.inner_text(selector):
        assert time.monotonic() < deadline, page.inner_text(selector)[:500]
        page.wait_for_timeout(250)


def choose(page: Any, elem_id: str, option: str) -> None:
    page.locator(f"#{elem_id} input").first.click()
    page.get_by_role("option", name=option, exact=True).click()


def test_admin_sets_up_and_a_member_gets_a_cited_answer(server: str, browser: Any) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    admin = log_in(browser, server, *ADMIN)
    assert "(admin)" in admin.inner_text("#lantern-header")
    admin.get_by_role("tab", name="Admin").click()
    fill(admin, "new-collection", "HR")
    admin.click("#create-collection")
    admin.get_by_text("Users, groups and API keys").click()
    fill(admin, "new-group", "staff")
    admin.click("#create-group")
    admin.wait_for_selector("#people >> text=staff")
    for email in ("mia@example.com", "otto@example.com"):
        fill(admin, "new-user-email", email)
        fill(admin, "new-user-password", "member-password-1")
        admin.click("#create-user")
        admin.wait_for_timeout(500)
    choose(admin, "member-group", "staff")
    choose(admin, "member-user", "mia@example.com")
    admin.click("#add-member")
    admin.wait_for_selector("#people >> text=mia@example.com")
    choose(admin, "admin-collection", "HR")
    choose(admin, "grant-group", "staff")
    admin.click("#set-access")
    admin.wait_for_selector("#grants >> text=staff (read)")
    admin.locator("#upload input[type=file]").set_input_files(str(HERE / "employee_handbook.pdf"))
    admin.wait_for_timeout(1000)
    admin.click("#upload-btn")
    admin.wait_for_selector("#upload-result >> text=queued", timeout=30_000)
    wait_text(admin, "#documents", "ready", timeout_s=120)
    admin.screenshot(path=str(SHOTS / "admin.png"), full_page=True)
    admin.close()

    member = log_in(browser, server, "mia@example.com", "member-password-1")
    assert "(member)" in member.inner_text("#lantern-header")
    assert member.get_by_role("tab", name="Admin").count() == 0
    assert "HR" in member.inner_text("#collections")
    fill(member, "question", "How many vacation days do new employees get?")
    member.click("#ask")
    member.wait_for_selector("#citations .lantern-cite", timeout=60_000)
    assert "25 days" in member.inner_text("#chatbot")
    cites = member.inner_text("#citations")
    assert "Employee Handbook" in cites
    assert "page 4" in cites
    assert member.locator("#citations mark").count() >= 1
    link = member.locator("#citations a").first.get_attribute("href")
    assert link.endswith("#page=4")
    fill(member, "comment", "Clear and cited")
    member.locator("#chatbot button[aria-label='Like']").last.click()
    member.wait_for_selector("#feedback-status >> text=feedback was saved", timeout=30_000)
    member.screenshot(path=str(SHOTS / "chat.png"), full_page=True)
    member.close()

    outsider = log_in(browser, server, "otto@example.com", "member-password-1")
    assert "HR" not in outsider.inner_text("#collections")
    fill(outsider, "question", "How many vacation days do new employees get?")
    outsider.click("#ask")
    outsider.wait_for_selector("#notice .lantern-notice", timeout=60_000)
    assert "25 days" not in outsider.inner_text("#chatbot")
    outsider.close()


def test_without_a_session_the_ui_sends_you_to_log_in(server: str, browser: Any) -> None:
    page = browser.new_page()
    page.goto(f"{server}/ui/")
    page.wait_for_url("**/login?next=/ui/")
    page.fill("#email", ADMIN[0])
    page.fill("#password", "wrong-password-123")
    page.click("button[type=submit]")
    page.wait_for_selector("#error >> text=Wrong e-mail or password")
    page.close()


def test_the_ui_loads_nothing_from_other_sites(server: str, browser: Any) -> None:
    hosts: set[str] = set()
    page = browser.new_page()
    page.on("request", lambda r: hosts.add(r.url.split("/")[2]))
    page.goto(f"{server}/ui/")
    page.fill("#email", ADMIN[0])
    page.fill("#password", ADMIN[1])
    page.click("button[type=submit]")
    page.wait_for_selector("text=Signed in as", timeout=60_000)
    page.wait_for_timeout(1500)
    page.close()
    assert hosts == {server.split("/")[2]}
