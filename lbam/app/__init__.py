"""``lbam app``: a local web page to paint the hole, sketch edges inside it, and see the fill.

The server (:mod:`lbam.app.server`, Starlette + uvicorn) serves one static page (``static/``: vanilla
JavaScript and canvas, no build step, no asset from the network) and the HTTP API the page itself uses:

  POST /api/inpaint      multipart: ``image``, ``mask`` (white = hole), optional ``edges`` (white = edge line,
                         used inside the hole), optional ``dilate`` (pixels) -> the result as ``image/png``;
                         header ``X-Lbam-Edges`` names the URL of the completed edge map
  GET  /api/edges/{id}   the completed edge map of a recent run (grayscale PNG, white = edge)
  GET  /api/info         weights, device and the upload limits (JSON)

Bad input gets a 4xx answer ``{"error": "..."}``. Needs the optional extra: ``pip install "lbam[app]"``;
importing this package does not import the extra, :func:`create_app` and :func:`serve` do.
"""
from __future__ import annotations

from typing import Any

__all__ = ["create_app", "serve", "missing_dependencies"]

#: import names of the ``lbam[app]`` extra
APP_MODULES = ("starlette", "uvicorn", "python_multipart")


def missing_dependencies() -> list:
    """Import names of the ``app`` extra that are not installed (empty when the app can run)."""
    import importlib.util

    return [m for m in APP_MODULES if importlib.util.find_spec(m) is None]


def __getattr__(name: str) -> Any:
    if name in ("create_app", "serve"):
        from . import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
