"""The web dashboard and its HTTP API: ``create_app()`` returns a FastAPI application.

``pgflow dashboard`` serves it; ``outer.mount("/pgflow", create_app(url))`` embeds it.
"""

from __future__ import annotations

from pgflow.web._app import create_app

__all__ = ["create_app"]
