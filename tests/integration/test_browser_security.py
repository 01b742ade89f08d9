"""Attacks a browser would carry out against ``lantern serve``, in real Chromium.

The log-in page runs no script from its URL (reflected XSS), sends the browser only
to this site after log-in (open redirect), cannot be framed (clickjacking), stored
HTML and SVG files run nothing on Lantern's origin, and a page on another port of
the same host cannot upload into a signed-in admin's collection (CSRF).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest

from tests.integration.processes import free_port, lantern_server

ADMIN = ("root@example.com", "a-long-admin-password")

#: ``next`` values, as a user would receive them in a link (already URL-encoded).
XSS = [
    "/%26lt%3B/script%26gt%3B%26lt%3Bscript%26gt%3Balert(1)%26lt%3B/script%26gt%3B",
    "/%3C/script%3E%3Cscript%3Ealert(1)%3C/script%3E",
    "/%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E",
    "/%22%20autofocus%20onfocus%3D%22alert(1)",
    "javascript:alert(1)",
    "/&#x22;&#x3E;&#x3C;script&#x3E;alert(1)&#x3C;/script&#x3E;",
]
#: Targets that browsers resolve to another site.
OFFSITE = [
    "/%5Cexample.org/",
    "/%09/example.org/",
    "%2F%2Fexample.org",
    "//example.org",
    "/%5C%5Cexample.org",
    "%5C/example.org",
    "/%0A/example.org",
    "%20//example.org",
    "https:example.org",
    "https://example.org/ui/",
    "http:%5C%5Cexample.org",
    "/%2F%2Fexample.org/%2E%2E",
    "javascript:fetch('/api/v1/api-keys',{method:'POST'})",
    "data:text/html,%3Cscript%3Ealert(1)%3C/script%3E",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with lantern_server(tmp_path_factory.mktemp("browser-security"), ADMIN) as url:
        yield url


@pytest.fixture
def page(browser: Any, server: str, attacker: Attacker) -> Iterator[Any]:
    """A page that records dialogs (a script's ``alert``) and every request to another
    host (aborted: nothing leaves this machine)."""
    context = browser.new_context()
    p = context.new_page()
    p.dialogs = []
    p.offsite = []
    p.on("dialog", lambda d: (p.dialogs.append(d.message), d.dismiss()))
    local = {urlsplit(server).netloc, urlsplit(attacker.url).netloc}

    def route(r: Any) -> None:
        if urlsplit(r.request.url).netloc in local:
            r.continue_()
        else:
            p.offsite.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    yield p
    context.close()


class Attacker:
    """A real web server on another port of this host (same site, other origin), so
    Chromium treats its pages as it would an attacker's: ``pages`` maps path -> HTML."""

    def __init__(self) -> None:
        pages: dict[str, str] = {}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path, "").encode()
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.pages = pages
        self.httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def attacker() -> Iterator[Attacker]:
    a = Attacker()
    yield a
    a.httpd.shutdown()
    a.httpd.server_close()


def sign_in(page: Any, server: str, next_param: str) -> None:
    page.goto(f"{server}/login?next={next_param}")
    page.fill("#email", ADMIN[0])
    page.fill("#password", ADMIN[1])
    page.click("button[type=submit]")
    deadline = time.monotonic() + 20
    while "/login" in page.url and not page.offsite and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    page.wait_for_load_state()


@pytest.mark.parametrize("payload", XSS)
def test_the_login_page_runs_no_script_from_its_url(page: Any, server: str, payload: str) -> None:
    page.goto(f"{server}/login?next={payload}")
    page.wait_for_timeout(300)
    page.focus("#email")
    assert page.dialogs == []
    assert page.locator("img").count() == 0
    assert page.locator("script").count() == 1  # the page's own
    # Signing in from that link lands on this site, still without running anything.
    sign_in(page, server, payload)
    assert page.dialogs == []
    assert page.offsite == []
    assert page.url.startswith(server + "/")


@pytest.mark.parametrize("target", OFFSITE)
def test_after_log_in_the_browser_stays_on_this_site(page: Any, server: str, target: str) -> None:
    sign_in(page, server, target)
    assert page.offsite == [], target
    assert page.dialogs == []
    assert urlsplit(page.url).netloc == urlsplit(server).netloc


def test_a_local_target_is_kept_exactly(page: Any, server: str) -> None:
    sign_in(page, server, quote("/api/v1/me?x=1#top", safe=""))
    assert page.url == f"{server}/api/v1/me?x=1#top"
    assert ADMIN[0] in page.inner_text("body")


def test_no_other_site_can_frame_lantern(page: Any, server: str, attacker: Attacker) -> None:
    sign_in(page, server, "/ui/")
    for target in ("/login", "/ui/", "/api/v1/docs"):
        path = f"/frame{target.replace('/', '-')}"
        attacker.pages[path] = f'<iframe id="f" src="{server}{target}" width=800 height=600>'
        page.goto(attacker.url + path)
        page.wait_for_timeout(1500)
        frame = page.frame_locator("#f")
        # A framed page would show its content; a refused frame is Chromium's error page.
        assert frame.locator("#email").count() == 0, target
        assert frame.locator("text=Signed in as").count() == 0, target
        assert frame.locator("#swagger-ui").count() == 0, target
    # The same pages open fine on their own.
    page.goto(f"{server}/login")
    assert page.locator("#email").count() == 1


def test_stored_html_and_svg_run_nothing_on_lanterns_origin(
    browser: Any, page: Any, server: str
) -> None:
    api = admin_client(server)
    cid = api.post("/api/v1/collections", json={"name": "Uploads"}).json()["id"]
    script = "<script>document.title='pwned';alert(document.domain)</script>"
    files = {
        "policy.html": f"<html><body>{script}<p>Policy</p></body></html>".encode(),
        "logo.svg": f'<svg xmlns="http://www.w3.org/2000/svg">{script}</svg>'.encode(),
    }
    r = api.post(
        f"/api/v1/collections/{cid}/documents",
        files=[("files", (n, d)) for n, d in files.items()],
    )
    assert r.status_code == 202, r.text
    sign_in(page, server, "/ui/")
    for doc in r.json():
        url = f"{server}/api/v1/documents/{doc['document_id']}/file"
        if api.get(url).headers["content-disposition"].startswith("attachment"):
            with page.expect_download():  # Chromium saves it instead of opening it
                page.evaluate("u => { window.location.href = u; }", url)
        else:
            page.goto(url)
        page.wait_for_timeout(500)
        assert page.dialogs == [], doc["name"]
        assert page.title() != "pwned", doc["name"]
        # Embedded in one of Lantern's own pages, it runs nothing either.
        page.goto(f"{server}/login")
        page.evaluate(
            "u => { const o = document.createElement('object'); o.data = u;"
            " document.body.appendChild(o); }",
            url,
        )
        page.wait_for_timeout(800)
        assert page.dialogs == [], doc["name"]


def test_a_page_on_another_port_cannot_write_with_the_admins_cookie(
    page: Any, server: str, attacker: Attacker
) -> None:
    """Same host, other port: same site, so SameSite=Lax sends the cookie; the server
    must refuse the write by its origin."""
    sign_in(page, server, "/ui/")
    api = admin_client(server)
    cid = api.post("/api/v1/collections", json={"name": "Target"}).json()["id"]
    attacker.pages["/csrf"] = f"""<script>
      const fd = new FormData();
      fd.append('files', new Blob(['Planted text'], {{type: 'text/plain'}}), 'planted.txt');
      const opts = {{mode: 'no-cors', credentials: 'include', method: 'POST'}};
      const text = {{'Content-Type': 'text/plain'}};
      Promise.allSettled([
        fetch('{server}/api/v1/collections/{cid}/documents', {{...opts, body: fd}}),
        fetch('{server}/ui/gradio_api/call/create_collection', {{...opts, headers: text,
          body: '{{"data": ["Planted"]}}'}}),
      ]).then(() => {{ document.title = 'done'; }});
    </script>"""
    sent: list[Any] = []
    page.on("request", lambda r: sent.append(r) if r.url.startswith(server) else None)
    page.goto(attacker.url + "/csrf")
    page.wait_for_function("document.title === 'done'", timeout=20_000)
    page.wait_for_timeout(1000)
    # The browser sent both from the other origin, with the admin's cookie...
    assert sorted(urlsplit(r.url).path for r in sent) == sorted(
        [f"/api/v1/collections/{cid}/documents", "/ui/gradio_api/call/create_collection"]
    )
    for r in sent:
        headers = r.all_headers()
        assert headers["origin"] == attacker.url
        assert "lantern_session=" in headers["cookie"]
    # ...so nothing changed.
    assert api.get(f"/api/v1/collections/{cid}/documents").json() == []
    assert "Planted" not in api.get("/api/v1/collections").text


def admin_client(server: str) -> httpx.Client:
    client = httpx.Client(base_url=server, timeout=60)
    r = client.post("/api/v1/auth/login", json={"email": ADMIN[0], "password": ADMIN[1]})
    assert r.status_code == 200, r.text
    return client
