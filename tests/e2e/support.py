"""What every browser test shares: Debian's Chromium, where screenshots go, and a live server in a thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
LAPTOP = {"width": 1440, "height": 900}
# Without the background-networking flags Chromium keeps calling hosts this closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    """Serve the app on 127.0.0.1 (a free port) with werkzeug in a thread; yields the base URL."""
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_port}"
    finally:
        http.shutdown()
        thread.join(timeout=10)


def laptop_page(
    browser: Any, base: str, locale: str = "en-GB", *, expected_4xx: bool = False
) -> tuple[Any, Any, list[str]]:
    """A fresh context on a laptop screen; requests off the site are blocked and recorded, console errors too.

    expected_4xx: the run provokes 401s and 404s on purpose, so the browser's "status of 4xx" lines are not problems.
    """
    context = browser.new_context(viewport=LAPTOP, locale=locale)
    problems: list[str] = []

    def guard(route: Any) -> None:
        if route.request.url.startswith(base):
            route.continue_()
        else:
            problems.append(f"external request: {route.request.url}")
            route.abort()

    def console(msg: Any) -> None:
        if msg.type == "error" and not (expected_4xx and "the server responded with a status of 4" in msg.text):
            problems.append(f"console {msg.type}: {msg.text}")

    context.route("**/*", guard)
    page = context.new_page()
    page.on("console", console)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    return context, page, problems


def production_like_app(folder: Path, **extra: Any) -> Flask:
    """The app as deployed (SQLite in `folder`, CSRF on, TESTING off so cookies are Secure), fresh keys."""
    from cfm import create_app
    from cfm.services.crypto import generate_keys

    config = {
        "WTF_CSRF_ENABLED": True,
        "DATABASE_URL": f"sqlite:///{folder / 'cfm.sqlite'}",
        "REDIS_URL": None,
        **generate_keys(),
        **extra,
    }
    return create_app(config)
