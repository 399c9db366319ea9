"""A real browser against the live server: Playwright (sync API) driving Debian's chromium.

Fixtures (imported by tests/e2e/conftest.py):
- `page`: a fresh Playwright page (own cookies) whose relative URLs go to the live server,
  so `page.goto("/console/")` works. JavaScript errors on the page fail the test.
- `console_login(user, password=DEFAULT_PASSWORD, next_path="")`: signs in through the real
  login form (`/console/login?next=...` when next_path is given, as from an email link, and
  checks it landed there), checks the header names the user, and returns the page.
  (The fixture function is `browser_page`, named `page` for tests: conftest imports it.)

The browser is `STEWARD_CHROMIUM` if set, else `chromium` (Debian's package, installed by
`./dev test`) found on PATH. Playwright's own browser download is never used. Without a
browser these tests fail with a message saying how to get one; they are not skipped, so a
machine that cannot run them never reports them green.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from urllib.parse import urlencode

import pytest
from django.core.cache import cache

# The password tests.conftest.make_user gives every user.
DEFAULT_PASSWORD = "x-unused-pw"
# Names Debian, Ubuntu and others give the binary, in order of preference.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome")
TIMEOUT_MS = 15_000


def chromium_executable() -> str:
    """The browser binary to drive, or a test failure that says how to get one."""
    override = os.environ.get("STEWARD_CHROMIUM")
    if override:
        if os.path.isfile(override) and os.access(override, os.X_OK):
            return override
        pytest.fail(f"STEWARD_CHROMIUM={override!r} is not an executable file.", pytrace=False)
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "No Chromium for the browser tests: `./dev test` installs Debian's package when run as "
        "root with apt-get (`apt-get install chromium`); elsewhere install chromium, or point "
        "STEWARD_CHROMIUM at a Chromium or Chrome binary.",
        pytrace=False,
    )


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """One headless chromium per test module (launching one costs about a second).

    Playwright's sync API runs an asyncio event loop on the test's thread (in a greenlet) for
    as long as it is started. Django sees that running loop and refuses every ORM call from the
    thread (SynchronousOnlyOperation): the test's own database work (making users, checking
    audit rows after a browser step) and pytest-django's flush between tests. The guard exists
    for async code sharing a connection between tasks; here the loop only carries Playwright's
    messages to its driver, no Django code runs in it, and the thread's ORM calls stay
    sequential. So DJANGO_ALLOW_ASYNC_UNSAFE is set only while Playwright runs, that is in test
    modules that use the browser, and removed when such a module ends. (Doing all database work
    before starting Playwright would avoid the variable but forbid checking the database after
    a browser step.)
    """
    executable = chromium_executable()
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=executable, headless=True)
            try:
                yield chromium
            finally:
                chromium.close()


@pytest.fixture(name="page")
def browser_page(browser, live_server) -> Iterator:
    """A page in a fresh browser context (no cookies), relative URLs on the live server."""
    # Imported here: conftest imports this module's fixtures at its top.
    from tests.e2e.conftest import _wait_for_request_threads

    # Failed logins are counted per client address (127.0.0.1 here too) for a minute; those an
    # earlier test made must not refuse this test's logins.
    cache.clear()
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        # Closing the context closes its connections, so the live server's request threads
        # can finish before the test's database is flushed (see _wait_for_request_threads).
        context.close()
        _wait_for_request_threads()
    assert not errors, f"JavaScript errors on the page: {errors}"


def login_through_form(page, username: str, password: str, *, next_path: str = "") -> None:
    """Open the console login form, fill it in and submit it, as a person would."""
    page.goto("/console/login" + (f"?{urlencode({'next': next_path})}" if next_path else ""))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


@pytest.fixture
def console_login(page) -> Callable:
    """console_login(user, password=DEFAULT_PASSWORD, next_path="") -> the signed-in page."""
    from playwright.sync_api import expect

    def login(user, password: str = DEFAULT_PASSWORD, *, next_path: str = ""):
        login_through_form(page, user.username, password, next_path=next_path)
        expect(page.get_by_test_id("signed-in-user")).to_contain_text(user.username)
        if next_path:
            expect(page).to_have_url(re.compile(re.escape(next_path) + "$"))
        return page

    return login
