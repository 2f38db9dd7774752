"""The dashboard keeps going by itself: the gateway restarts (it reconnects with backoff and
the log tail has every line exactly once), and the access token expires (it is refreshed,
the sockets carry on with the new one)."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.helpers.client import Socket, log_frame
from tests.helpers.stack import Stack
from tests.web.test_dashboard import add_server, register

# Short-lived access tokens (the minimum allowed), so the test sees a refresh and a renewal.
STACK_ENV = {"OPSWIRE_ACCESS_TOKEN_TTL_S": "30"}


async def open_logs(page: Page, stack: Stack, name: str) -> str:
    """Register, add a server, open its log tail; the agent's key."""
    await register(page, stack)
    server_id, key = await add_server(page, name)
    await page.goto(f"{stack.base_url}/#/servers/{server_id}/logs")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    return key


async def test_gateway_restart_resumes_the_tail_without_gaps_or_repeats(page: Page, stack: Stack) -> None:
    key = await open_logs(page, stack, "restart-1")
    lines = page.locator("[data-test=log-line]")
    agent = await Socket.agent(stack.ws_url, key)
    await agent.send(log_frame("before the restart"))
    await expect(lines.filter(has_text="before the restart")).to_have_count(1)

    await stack.stop("gateway")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "reconnecting")
    await stack.start("gateway")
    await stack.wait_ready()
    # Lines sent while the dashboard may still be waiting to reconnect are not missed.
    agent = await Socket.agent(stack.ws_url, key)
    for n in range(5):
        await agent.send(log_frame(f"after the restart {n}"))
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=40_000)
    for n in range(5):
        await expect(lines.filter(has_text=f"after the restart {n}")).to_have_count(1)
    await agent.send(log_frame("live again"))
    await expect(lines.filter(has_text="live again")).to_have_count(1)
    await expect(lines).to_have_count(7)  # nothing twice
    await agent.close()


async def test_an_expiring_token_is_refreshed_and_the_sockets_carry_on(page: Page, stack: Stack) -> None:
    key = await open_logs(page, stack, "token-1")
    agent = await Socket.agent(stack.ws_url, key)
    session = await page.evaluate("JSON.parse(localStorage.getItem('opswire.session'))")
    # The page refreshes by itself before expiry, and keeps the new (rotated) pair.
    await page.wait_for_function(
        "old => JSON.parse(localStorage.getItem('opswire.session')).refresh !== old",
        arg=session["refresh"],
        timeout=40_000,
    )
    # Past the first token's expiry, the tail is still live and REST still answers.
    await page.wait_for_function(f"Date.now() > {session['expiresAt']} + 2000", timeout=40_000)
    lines = page.locator("[data-test=log-line]")
    await agent.send(log_frame("after the first token expired"))
    await expect(lines.filter(has_text="after the first token expired")).to_have_count(1)
    await page.get_by_role("tab", name="Alerts").click()
    await expect(page.get_by_text("No active alerts.")).to_be_visible()
    await expect(page.get_by_role("heading", name="Sign in to opswire")).to_have_count(0)
    await agent.close()
