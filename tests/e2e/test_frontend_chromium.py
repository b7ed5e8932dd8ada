"""The frontend example (examples/frontend) in a real browser: headless Chromium, four origins.

The page (origin A) signs in at oidc-provider (origin B) with the authorization code + PKCE flow,
exchanges the IdP's access token at authsvc (origin C, RFC 8693 through ``/sdk/authsvc.js``) and
reads ``/v0/pipes/orders.json`` through nginx (origin D, ``deploy/nginx/authsvc.conf``), whose
data API filters rows by the ``org_id`` authsvc took from the IdP token. The example is started
by the same code as ``examples/frontend/run`` (:func:`examples.frontend.stack.running_example`).

Revocation: ``POST /v1/tokens/revoke {"sub"}`` revokes the subject's tokens issued up to that
moment. The page's call with its cached data token and no retry then gets a 401 and shows it;
the token source's ``fetch`` gets the same 401, exchanges the still-valid IdP token again and
shows the rows with a new data token (``jti``). Another user's tab is not affected.

Driver: selenium with Debian's ``chromium`` and ``chromium-driver`` (same package version, so
the driver always matches the browser; Selenium Manager is bypassed by the explicit driver path
and downloads nothing). Without them, nginx, node or the IdP's node_modules the test skips,
except under ``CI`` where it fails. ``AUTHSVC_UPDATE_SCREENSHOT=1`` writes the page after
alice's rows to ``docs/frontend-example.png``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from examples.frontend import data_api, gateway, stack

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "frontend-example.png"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1200,1000",
    # Every origin of the test is an IP literal: no name resolves, so nothing leaves the
    # machine (the IdP's dev login page links a web font).
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)
WAIT_S = 20.0

pytestmark = pytest.mark.slow


def missing_requirement() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    if CHROMIUM is None or CHROMEDRIVER is None:
        return "Chromium is not installed (apt-get install chromium chromium-driver)"
    if gateway.find_nginx() is None:
        return "nginx is not installed (apt-get install nginx-light)"
    if shutil.which("node") is None:
        return "node is not installed"
    if not (stack.IDP_DIR / "node_modules" / "oidc-provider").is_dir():
        return f"oidc-provider is not installed (cd {stack.IDP_DIR} && npm ci)"
    return None


def require_browser_stack() -> None:
    """Skip when a requirement is missing, fail instead when ``CI`` is set."""
    reason = missing_requirement()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(f"CI must run the browser test: {reason} (scripts/bootstrap installs it)")
    pytest.skip(reason)


def new_browser(profile: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    assert CHROMIUM is not None
    assert CHROMEDRIVER is not None
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@dataclass
class Tab:
    """One browser tab (its own sessionStorage: its own signed-in user)."""

    driver: Any
    handle: str

    def focus(self) -> None:
        self.driver.switch_to.window(self.handle)

    def text(self, element_id: str) -> str:
        return str(self.driver.find_element("id", element_id).text)

    def status(self) -> tuple[str, str, int]:
        element = self.driver.find_element("id", "status")
        run = element.get_attribute("data-run")
        return str(element.get_attribute("data-state")), str(element.text), int(run or 0)

    def rows(self) -> list[tuple[int, int]]:
        """(id, org_id) of every row the page shows."""
        cells = self.driver.execute_script(
            "return [...document.querySelectorAll('#orders tbody tr')]"
            ".map(tr => [tr.querySelector('.id').textContent, tr.dataset.org]);"
        )
        return [(int(i), int(org)) for i, org in cells]

    def describe(self) -> str:
        """What the tab shows and what the console said: the message of a failed wait."""
        from selenium.common.exceptions import WebDriverException

        try:
            state, text, run = self.status()
            shown = f"status[{state}, run {run}]: {text}\nlog:\n{self.text('log')}"
        except WebDriverException:
            body = self.driver.execute_script("return document.body?.innerText ?? '';")
            shown = f"not the example page:\n{str(body)[:2000]}"
        try:
            console = [e["message"] for e in self.driver.get_log("browser")]
        except WebDriverException:
            console = []
        return f"url={self.driver.current_url}\n{shown}\nconsole: {console}"

    def wait(self, condition: Callable[[], bool], what: str) -> None:
        from selenium.common.exceptions import NoSuchElementException, TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            WebDriverWait(self.driver, WAIT_S, ignored_exceptions=[NoSuchElementException]).until(
                lambda _driver: condition()
            )
        except TimeoutException:
            raise AssertionError(f"timed out waiting for {what}\n{self.describe()}") from None

    def wait_for_run_after(self, run: int, what: str) -> tuple[str, str]:
        self.wait(lambda: self.status()[2] > run, what)
        state, text, _ = self.status()
        return state, text

    def click(self, element_id: str) -> tuple[str, str]:
        """Click a button of the page and wait for the call it makes to finish."""
        before = self.status()[2]
        self.driver.find_element("id", element_id).click()
        return self.wait_for_run_after(before, f"the result of #{element_id}")


def sign_in(tab: Tab, example: stack.Example, user: str) -> None:
    """Through the real IdP login form; back on the page, it loads the orders once."""
    tab.focus()
    tab.driver.get(example.page_url)
    tab.wait(lambda: tab.status()[0] == "idle", "the signed-out page")
    tab.driver.find_element("id", "sign-in").click()
    tab.wait(
        lambda: (
            tab.driver.current_url.startswith(example.idp_url)
            and bool(tab.driver.find_elements("name", "login"))
        ),
        "the IdP's login form",
    )
    tab.driver.find_element("name", "login").send_keys(user)
    tab.driver.find_element("name", "password").send_keys("any password")
    tab.driver.find_element("css selector", "button[type=submit]").click()
    tab.wait(lambda: tab.driver.current_url.startswith(example.page_url), "the page again")
    tab.wait_for_run_after(0, f"{user}'s first data call")


@dataclass
class Session:
    example: stack.Example
    alice: Tab
    bob: Tab


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    require_browser_stack()
    tmp = tmp_path_factory.mktemp("frontend")
    with stack.running_example(tmp / "example", stack.Ports.free()) as example:
        driver = new_browser(tmp / "chromium-profile")
        try:
            alice = Tab(driver, driver.current_window_handle)
            sign_in(alice, example, "alice")
            driver.switch_to.new_window("tab")
            bob = Tab(driver, driver.current_window_handle)
            sign_in(bob, example, "bob")
            yield Session(example, alice, bob)
        finally:
            driver.quit()


def expected_rows(org_id: int) -> list[tuple[int, int]]:
    return [(i, org_id) for i in data_api.seeded_ids(org_id)]


def test_alice_sees_only_org_42_rows_with_a_data_token_filtered_by_her_idp_claim(
    session: Session,
) -> None:
    tab = session.alice
    tab.focus()
    assert tab.status()[0] == "ok", tab.describe()
    assert tab.rows() == expected_rows(42), tab.describe()
    assert tab.text("idp-sub") == "alice"
    assert tab.text("idp-org") == "42"
    assert tab.text("data-sub") == "alice"
    assert json.loads(tab.text("data-filter")) == {"org_id": 42}
    assert tab.text("data-scope") == stack.DATA_SCOPE
    if os.environ.get("AUTHSVC_UPDATE_SCREENSHOT") == "1":
        assert tab.driver.save_screenshot(str(SCREENSHOT))


def test_bob_sees_only_org_7_rows_in_his_own_tab(session: Session) -> None:
    tab = session.bob
    tab.focus()
    assert tab.status()[0] == "ok", tab.describe()
    assert tab.rows() == expected_rows(7), tab.describe()
    assert tab.text("data-sub") == "bob"
    assert json.loads(tab.text("data-filter")) == {"org_id": 7}


def revoke_subject(example: stack.Example, sub: str) -> None:
    r = httpx.post(
        f"{example.authsvc_url}/v1/tokens/revoke",
        json={"sub": sub},
        headers={"Authorization": f"Bearer {example.tenant.admin_key}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text


def test_revoking_alice_fails_her_cached_token_visibly_and_a_fresh_exchange_recovers(
    session: Session,
) -> None:
    alice, bob = session.alice, session.bob
    alice.focus()
    state, _ = alice.click("check")
    assert state == "ok", alice.describe()
    revoked_jti = alice.text("data-jti")

    revoke_subject(session.example, alice.text("idp-sub"))

    state, text = alice.click("check")
    assert state == "error", alice.describe()
    assert "HTTP 401" in text
    assert alice.rows() == []
    assert alice.text("data-jti") == revoked_jti

    state, text = alice.click("load")
    assert state == "ok", alice.describe()
    assert alice.rows() == expected_rows(42)
    assert alice.text("data-jti") != revoked_jti
    state, _ = alice.click("check")
    assert state == "ok", alice.describe()

    bob.focus()
    state, _ = bob.click("check")
    assert state == "ok", bob.describe()
    assert bob.rows() == expected_rows(7)
