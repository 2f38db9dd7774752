"""OPSWIRE_JWT_SECRET: placeholders and predictable values stop the process (DESIGN §9 Auth);
every random token passes; nothing the project ships can be used as it is."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from opswire.runtime.settings import JwtSettings, load_settings, secret_weakness

SAMPLES = 4000


@pytest.mark.parametrize(
    "make",
    [
        lambda: secrets.token_urlsafe(24),
        lambda: secrets.token_urlsafe(32),
        lambda: secrets.token_urlsafe(48),
        lambda: secrets.token_urlsafe(64),
        lambda: secrets.token_hex(16),
        lambda: secrets.token_hex(32),
    ],
    ids=["urlsafe24", "urlsafe32", "urlsafe48", "urlsafe64", "hex16", "hex32"],
)
def test_random_tokens_are_accepted(make: Callable[[], str]) -> None:
    refused = [(token, why) for token in (make() for _ in range(SAMPLES)) if (why := secret_weakness(token))]
    assert refused == []


@pytest.mark.parametrize(
    "value",
    [
        "CHANGE-ME-to-48-random-characters",
        "change_me_please_to_something_random_0123",
        "ChangeMe" + secrets.token_urlsafe(32),
        secrets.token_urlsafe(32) + "-changethis",
        "replace-with-a-long-random-string-of-48-chars",
        "PLACEHOLDER_" + secrets.token_hex(16),
        "an-example-jwt-secret-for-the-quick-start",
        "insert-your-secret-here-at-least-32-characters",
        "your-secret-" + secrets.token_hex(16),
        "xxxx-" + secrets.token_urlsafe(32),
        "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        "x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x",
        "todo:" + secrets.token_urlsafe(32),
        "password1234567890password1234567890",
    ],
)
def test_placeholders_are_refused(value: str) -> None:
    assert secret_weakness(value) == "is a placeholder"


@pytest.mark.parametrize(
    "value",
    [
        "a" * 32,
        "ab" * 32,
        "0" * 64,
        "abcdefghij" * 4,
        "abcdefghabcdefghabcdefghabcdefgh1",
        "0123456789abcdefghijklmnopqrstuvwxyz",
        "aaaabbbbccccddddeeeeffffgggghhhhiiiijjjj",
        "a" * 40 + "bcdefghijk",
    ],
)
def test_predictable_values_are_refused(value: str) -> None:
    why = secret_weakness(value)
    assert why is not None
    assert "distinct" in why or "predictable" in why


@pytest.mark.parametrize("value", ["", "short", secrets.token_urlsafe(23)[:31]])
def test_short_values_are_refused(value: str) -> None:
    assert secret_weakness(value) == "is shorter than 32 characters"


def test_refusal_names_the_variable_and_how_to_make_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPSWIRE_JWT_SECRET", "CHANGE-ME-to-48-random-characters")
    with pytest.raises(SystemExit) as stopped:
        load_settings(JwtSettings, "opswire auth")
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "OPSWIRE_JWT_SECRET" in err
    assert "placeholder" in err
    assert "secrets.token_urlsafe(48)" in err
    assert "CHANGE-ME" not in err  # the value itself is never echoed


def test_a_random_secret_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = secrets.token_urlsafe(48)
    monkeypatch.setenv("OPSWIRE_JWT_SECRET", secret)
    assert load_settings(JwtSettings).jwt_secret == secret
    with pytest.raises(ValidationError):
        JwtSettings(jwt_secret="a" * 48)


# --- what the project ships -----------------------------------------------------------------

_ASSIGNMENT = re.compile(r"OPSWIRE_JWT_SECRET\s*[:=]\s*(\S+)")
# Compose interpolation that stops when the variable is unset or empty (no default).
_REQUIRED_FROM_ENV = re.compile(r"\$\{OPSWIRE_JWT_SECRET:\?[^}]*\}")


def _shipped_files(root: Path) -> list[Path]:
    files = [root / "compose.yaml", root / "README.md", root / "Makefile"]
    files += sorted((root / "deploy").rglob("*"))
    files += sorted((root / "docs").rglob("*.md"))
    files += sorted(root.glob("*.env*")) + sorted(root.glob("compose*.y*ml"))
    return sorted({path for path in files if path.is_file() and path.suffix != ".py"})


def _assignments(root: Path) -> list[tuple[str, str]]:
    found = []
    for path in _shipped_files(root):
        for line in path.read_text(errors="replace").splitlines():
            for match in _ASSIGNMENT.finditer(line):
                found.append((str(path.relative_to(root)), line[match.start(1) :].strip()))
    return found


def test_no_shipped_file_holds_a_usable_secret(repo_root: Path) -> None:
    assignments = _assignments(repo_root)
    places = {place for place, _ in assignments}
    assert "compose.yaml" in places and "deploy/k8s/opswire.yaml" in places  # the scan sees them
    for place, text in assignments:
        if text.startswith("${"):
            assert _REQUIRED_FROM_ENV.match(text), f"{place}: must be required, with no default"
        elif text.startswith("$("):
            continue  # generated on the spot, e.g. $(python3 -c 'import secrets; ...')
        else:
            literal = text.split(" #", 1)[0].strip().strip("'\"")
            assert secret_weakness(literal) is not None, f"{place} ships a usable OPSWIRE_JWT_SECRET"


def test_the_compose_file_takes_the_secret_from_the_environment(repo_root: Path) -> None:
    text = (repo_root / "compose.yaml").read_text()
    assert _REQUIRED_FROM_ENV.search(text)
