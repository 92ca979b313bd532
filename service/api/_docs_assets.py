"""Interactive API docs that work offline: Swagger UI and ReDoc served from files of an installed package.

The JavaScript and CSS come from the `fastapi-offline` distribution's ``static/`` folder (Swagger UI 5,
ReDoc 2); only those files are used, the app stays a plain FastAPI app created with
``docs_url=None, redoc_url=None``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_PREFIX = "/docs/static"
ASSET_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")


def assets_dir() -> Path:
    """The folder holding the Swagger UI and ReDoc assets (inside the installed fastapi-offline package)."""
    return Path(str(files("fastapi_offline") / "static"))


def install_offline_docs(app: FastAPI, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Serve the assets under ``/docs/static`` and add the Swagger UI, its OAuth2 redirect and ReDoc pages."""
    app.mount(STATIC_PREFIX, StaticFiles(directory=assets_dir()), name="docs-static")
    title = f"{app.title} - API docs"

    def asset(request: Request, name: str) -> str:
        return f"{request.scope.get('root_path', '')}{STATIC_PREFIX}/{name}"

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=title,
            swagger_js_url=asset(request, "swagger-ui-bundle.js"),
            swagger_css_url=asset(request, "swagger-ui.css"),
            swagger_favicon_url=asset(request, "favicon.png"),
            oauth2_redirect_url=f"{root}{docs_url}/oauth2-redirect",
        )

    @app.get(f"{docs_url}/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(redoc_url, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=title,
            redoc_js_url=asset(request, "redoc.standalone.js"),
            redoc_favicon_url=asset(request, "favicon.png"),
            with_google_fonts=False,
        )


__all__ = ["ASSET_FILES", "assets_dir", "install_offline_docs"]
