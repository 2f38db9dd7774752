"""`opswire up --demo`: a user, a server and a key for this machine, and an agent feeding it."""

from __future__ import annotations

import json
import secrets
import socket
import sys
from pathlib import Path
from typing import Any

import httpx

from opswire.launcher.supervisor import Child, Supervisor

DEMO_EMAIL = "demo@example.com"


async def _login(http: httpx.AsyncClient, email: str, password: str) -> str | None:
    reply = await http.post("/api/v1/auth/login", json={"email": email, "password": password})
    return str(reply.json()["access_token"]) if reply.status_code == 200 else None


async def _provision(http: httpx.AsyncClient, state_file: Path) -> dict[str, Any]:
    """Reuse the demo account kept in the data dir, or create it (user, server, key)."""
    if state_file.exists():
        state: dict[str, Any] = json.loads(state_file.read_text())
        token = await _login(http, state["email"], state["password"])
        if token is not None:
            headers = {"Authorization": f"Bearer {token}"}
            if (await http.get(f"/api/v1/servers/{state['server_id']}", headers=headers)).status_code == 200:
                return state
    password = secrets.token_urlsafe(12)
    email = DEMO_EMAIL
    reply = await http.post(
        "/api/v1/auth/register", json={"email": email, "password": password, "full_name": "opswire demo"}
    )
    if reply.status_code == 409:  # the account exists but its state file is gone
        email = f"demo-{secrets.token_hex(4)}@example.com"
        reply = await http.post("/api/v1/auth/register", json={"email": email, "password": password})
    reply.raise_for_status()
    token = await _login(http, email, password)
    headers = {"Authorization": f"Bearer {token}"}
    server = (
        (
            await http.post(
                "/api/v1/servers",
                headers=headers,
                json={
                    "name": socket.gethostname(),
                    "hostname": socket.gethostname(),
                    "description": "This machine (opswire up --demo)",
                },
            )
        )
        .raise_for_status()
        .json()
    )
    key = (
        (
            await http.post(
                "/api/v1/api-keys", headers=headers, json={"server_id": server["id"], "name": "demo agent"}
            )
        )
        .raise_for_status()
        .json()
    )
    state = {"email": email, "password": password, "server_id": server["id"], "api_key": key["key"]}
    state_file.touch(mode=0o600)
    state_file.write_text(json.dumps(state))
    return state


async def start_demo_agent(base_url: str, data_dir: Path, supervisor: Supervisor) -> str:
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as http:
        state = await _provision(http, data_dir / "demo.json")
    # The key goes through the environment, never argv (visible in ps).
    supervisor.add(
        Child(
            "agent",
            [sys.executable, "-m", "opswire", "agent", "--url", base_url],
            {"OPSWIRE_API_KEY": state["api_key"]},
        )
    )
    await supervisor.start()
    return (
        "Demo: an agent for this machine is running.\n"
        f"  log in as {state['email']} / {state['password']}  (kept in {data_dir / 'demo.json'})\n"
        f"  server id {state['server_id']}\n"
        f"  live metrics: ws://{base_url.removeprefix('http://')}/api/v1/ws/metrics/{state['server_id']}"
    )
