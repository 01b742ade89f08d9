"""The browser UI, driven in Debian's Chromium by Playwright against ``lantern serve``.

An admin logs in, creates a collection, a group and a member, grants the group
read access, uploads the handbook and waits until it is ready; the member logs
in, asks, sees the streamed answer with a citation to the right document and
page, and gives feedback; the member has no admin console; a user in no group
sees no collection. Screenshots go to ``docs/screenshots/`` (shown in the README).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.samples import HERE
from tests.integration.browser import log_in
from tests.integration.processes import lantern_server

LEAVE_ZH = "# 年假政策\n\n新员工每年享有十五天带薪年假。年假需要提前两周向经理申请。\n"
ADMIN = ("root@example.com", "a-long-admin-password")
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with lantern_server(tmp_path_factory.mktemp("ui"), ADMIN) as url:
        yield url


def fill(page: Any, elem_id: str, text: str) -> None:
    page.locator(f"#{elem_id} textarea, #{elem_id} input").first.fill(text)


def wait_text(page: Any, selector: str, text: str, timeout_s: float = 60) -> None:
    """Wait until ``text`` is in the element's visible text (tables render cells twice)."""

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
        # Created when the form is cleared: the next fill must not race that clearing.
        box = admin.locator("#new-user-email textarea, #new-user-email input").first
        deadline = time.monotonic() + 60
        while box.input_value():
            assert time.monotonic() < deadline, "the user was not created"
            admin.wait_for_timeout(100)
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
    admin.locator("#upload input[type=file]").set_input_files(
        files=[{"name": "年假政策.md", "mimeType": "text/markdown", "buffer": LEAVE_ZH.encode()}]
    )
    admin.wait_for_timeout(1000)
    admin.click("#upload-btn")
    wait_text(admin, "#documents", "年假政策.md", timeout_s=60)
    deadline = time.monotonic() + 120
    while admin.inner_text("#documents").count("ready") < 2:
        assert time.monotonic() < deadline, admin.inner_text("#documents")
        admin.wait_for_timeout(250)
    # The console says which embedding model is in use, and warns about the fallback.
    admin.get_by_role("button", name="Refresh status").click()
    wait_text(admin, "#system-status", "fallback model active")
    admin.screenshot(path=str(SHOTS / "admin.png"), full_page=True)
    admin.get_by_text("Audit log").click()
    fill(admin, "audit-action", "document.upload")
    admin.click("#show-audit")
    wait_text(admin, "#audit", "document.upload")
    assert "login" not in admin.inner_text("#audit")
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
    # Chinese questions get Chinese answers, cited like any other.
    member.click("#new-chat")
    fill(member, "question", "新员工有多少天年假？")
    member.click("#ask")
    wait_text(member, "#chatbot", "十五天")
    wait_text(member, "#citations", "年假政策")
    member.screenshot(path=str(SHOTS / "chat-zh.png"), full_page=True)
    # Chats: rename, resume, delete.
    fill(member, "chat-title", "年假")
    member.click("#rename-chat")
    wait_text(member, "#sessions", "年假")
    member.locator("#sessions label", has_text="How many vacation days").click()
    wait_text(member, "#chatbot", "25 days")
    assert "十五天" not in member.inner_text("#chatbot")
    # Each answer keeps its own sources: ask again, then click the first answer.
    fill(member, "question", "What is the deadline for submitting expense claims?")
    member.click("#ask")
    wait_text(member, "#citations", "page 6")
    member.locator("#chatbot .message", has_text="25 days").first.click()
    wait_text(member, "#citations", "page 4")
    member.click("#delete-chat")
    member.wait_for_timeout(1000)
    assert "How many vacation days" not in member.inner_text("#sessions")
    assert "年假" in member.inner_text("#sessions")
    member.click("#logout")
    member.wait_for_url("**/login")
    member.goto(f"{server}/ui/")
    member.wait_for_url("**/login**")
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


def test_a_member_cannot_call_admin_handlers_directly(server: str) -> None:
    """Hiding the tab is not the rule: the handlers check the caller themselves."""
    import httpx

    admin = httpx.Client(base_url=server, timeout=60)
    admin.post("/api/v1/auth/login", json={"email": ADMIN[0], "password": ADMIN[1]})
    admin.post("/api/v1/users", json={"email": "eve@example.com", "password": "eve-password-1"})
    eve = httpx.Client(base_url=server, timeout=60)
    eve.post("/api/v1/auth/login", json={"email": "eve@example.com", "password": "eve-password-1"})
    for name, data in (("create_collection", ["Eve's collection"]), ("create_key", ["eve"])):
        r = eve.post(f"/ui/gradio_api/call/{name}", json={"data": data})
        assert r.status_code == 200, r.text
        events = eve.get(f"/ui/gradio_api/call/{name}/{r.json()['event_id']}").text
        assert "event: error" in events
        assert "lk_" not in events
    assert "Eve's collection" not in admin.get("/api/v1/collections").text
    keys = admin.get("/api/v1/api-keys", params={"all_users": True}).json()
    assert all(k["name"] != "eve" for k in keys)
    # Without a session there is no UI at all.
    anonymous = httpx.post(f"{server}/ui/gradio_api/call/create_collection", json={"data": ["x"]})
    assert anonymous.status_code in (401, 403)
