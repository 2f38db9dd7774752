"""The web dashboard (DESIGN §11): static assets in this package, served by the gateway.

`/` is the single page (static/index.html), `/web/...` its ES modules and CSS. No build step
and nothing fetched from elsewhere: the browser talks to the same REST API and
WebSockets as any other client (docs/dashboard.md).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

WEB_DIR = Path(__file__).parent / "static"
ASSETS_URL = "/web"
# Assets change with each release; the page itself is always revalidated.
NO_CACHE = {"cache-control": "no-cache"}


def install_dashboard(app: FastAPI) -> None:
    app.mount(ASSETS_URL, StaticFiles(directory=WEB_DIR), name="web")

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", headers=NO_CACHE)
