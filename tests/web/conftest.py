"""Browser tests: the real stack (four services as processes) and headless Chromium.

Playwright drives the system's Chromium (Debian package `chromium`); its own browser
download cannot work here. Without a Chromium the tests fail saying how to install one.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Generator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.helpers.stack import Stack, stack_with_database

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
HINT = (
    "no Chromium found for the browser tests: install it with `sudo apt-get install -y chromium` "
    "(or set OPSWIRE_TEST_CHROMIUM to a Chromium executable)"
)


def chromium_path() -> str:
    configured = os.environ.get("OPSWIRE_TEST_CHROMIUM")
    found = configured or next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)
    if not found or not Path(found).exists():
        pytest.fail(HINT, pytrace=False)
    return found


@pytest.fixture(scope="module")
async def stack(
    request: pytest.FixtureRequest,
    nats_url: str,
    postgres_admin_url: str,
    jwt_secret: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    """The four services as real processes for one module (`STACK_ENV` in it: more settings)."""
    env = {"OPSWIRE_AGENT_IDLE_TIMEOUT_S": "60", **getattr(request.module, "STACK_ENV", {})}
    log_dir = tmp_path_factory.mktemp("stack")
    async with stack_with_database(nats_url, postgres_admin_url, jwt_secret, log_dir, **env) as running:
        yield running


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    executable = chromium_path()
    async with async_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        launched = await playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Page]:
    """A fresh browser context at desktop size; a screenshot is saved if the test fails."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    opened = await context.new_page()
    opened.set_default_timeout(20_000)
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    yield opened
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        shot = tmp_path / "failure.png"
        await opened.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failure: {shot}\npage errors: {errors}")
    await context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
