"""Just enough YAML reading for the shipped manifests (pyyaml is not a dependency):
blocks by indentation, comments dropped. The tests stay on text the files really hold."""

from __future__ import annotations

import re


def uncommented(text: str) -> list[str]:
    """The lines with `# …` comments removed (a `#` inside a value needs a space before it)."""
    lines = []
    for line in text.splitlines():
        stripped = re.sub(r"(^|\s)#.*$", "", line).rstrip()
        if stripped:
            lines.append(stripped)
    return lines


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def children(lines: list[str], key: str, indent: int) -> dict[str, list[str]]:
    """Under the `key:` line at `indent`, each child key (one level deeper) and its lines."""
    out: dict[str, list[str]] = {}
    inside = False
    current: str | None = None
    for line in lines:
        if _indent(line) == indent and not line.strip().startswith("- "):
            inside = line.strip() == f"{key}:"
            current = None
            continue
        if not inside:
            continue
        if _indent(line) == indent + 2 and re.match(r"^\s*[\w.-]+:", line):
            current = line.strip().split(":", 1)[0]
            out[current] = [line]
        elif current is not None:
            out[current].append(line)
    return out


def documents(text: str) -> list[str]:
    return [doc for doc in re.split(r"(?m)^---\s*$", text) if doc.strip()]
