"""`pip install 'opswire[agent]'` is just the agent (DESIGN §10): the wheel, installed without
its dependencies into a fresh venv beside only the base and agent pins from requirements.lock,
runs `opswire agent --help`; the server stack (fastapi, sqlalchemy, nats, ...) is not there,
and `pip check` finds nothing missing: the base dependencies really are all a plain install needs."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

from tests.deploy.natsproc import REPO

# The pins the agent's dependencies pull in (pydantic's own), besides the ones named in pyproject.
TRANSITIVE = {"pydantic-core", "annotated-types", "typing-extensions", "typing-inspection", "python-dotenv"}


def _name(requirement: str) -> str:
    return re.split(r"[\[=<>!~ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _agent_pins() -> list[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["agent"]}
    wanted |= TRANSITIVE
    lock = [
        line.strip()
        for line in (REPO / "requirements.lock").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    pins = [line for line in lock if _name(line) in wanted]
    assert {_name(pin) for pin in pins} == wanted, "every agent dependency is pinned in requirements.lock"
    return pins


def _run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300, cwd=cwd)


def test_agent_only_install_runs_the_agent_without_the_server_stack(tmp_path: Path) -> None:
    built = _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--quiet",
        "--disable-pip-version-check",
        "-w",
        tmp_path / "dist",
        REPO,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("opswire-*.whl")
    venv.create(tmp_path / "venv", with_pip=True)
    python = tmp_path / "venv" / "bin" / "python"
    pip = (python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps")
    installed = _run(*pip, *_agent_pins(), wheel)
    assert installed.returncode == 0, installed.stderr

    # Away from the source tree, so only the installed wheel can be imported.
    helped = _run(tmp_path / "venv" / "bin" / "opswire", "agent", "--help", cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert "--url" in helped.stdout and "--api-key" in helped.stdout

    for server_only in ("fastapi", "sqlalchemy", "nats", "faststream", "asyncpg", "prometheus_client"):
        probe = _run(python, "-c", f"import {server_only}", cwd=tmp_path)
        assert probe.returncode != 0, f"{server_only} is installed with the agent"
    checked = _run(python, "-m", "pip", "check", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
