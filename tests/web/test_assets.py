"""The dashboard's files: everything they load is in the package (no CDN, nothing from
elsewhere), and every module they import exists."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.web import WEB_DIR

# The SVG namespace is a name, not something fetched.
ALLOWED_URLS = {"http://www.w3.org/2000/svg"}
IMPORT = re.compile(r"""^\s*import\s.*?from\s+["'](\.{1,2}/[^"']+)["']""", re.MULTILINE)


def _assets() -> list[Path]:
    return sorted(p for p in WEB_DIR.rglob("*") if p.is_file())


def test_nothing_is_loaded_from_elsewhere() -> None:
    assert (WEB_DIR / "index.html").exists()
    for path in _assets():
        urls = set(re.findall(r"https?://[^\s\"'`)]+", path.read_text())) - ALLOWED_URLS
        assert not urls, f"{path.relative_to(WEB_DIR)} refers to {urls}"


def test_every_imported_module_exists() -> None:
    modules = [p for p in _assets() if p.suffix == ".js"]
    assert len(modules) >= 10
    for module in modules:
        for target in IMPORT.findall(module.read_text()):
            assert (module.parent / target).resolve().is_file(), f"{module.name} imports missing {target}"
    page = (WEB_DIR / "index.html").read_text()
    for src in re.findall(r'(?:src|href)="/web/([^"]+)"', page):
        assert (WEB_DIR / src).is_file(), f"index.html loads missing /web/{src}"
