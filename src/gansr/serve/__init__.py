"""``gansr serve``: a local web app and JSON/HTTP API for upscaling images.

:func:`create_app` builds the FastAPI application from a :class:`ServeConfig`; ``gansr serve``
runs it with uvicorn. FastAPI, uvicorn and python-multipart come with the ``serve`` extra
(``pip install 'gansr[serve]'``), so they are imported only when this package's contents are
used: ``import gansr.serve`` itself stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["ServeConfig", "create_app"]

if TYPE_CHECKING:
    from gansr.serve.app import create_app
    from gansr.serve.limits import ServeConfig


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from gansr.serve.app import create_app

        return create_app
    if name == "ServeConfig":
        from gansr.serve.limits import ServeConfig

        return ServeConfig
    raise AttributeError(f"module 'gansr.serve' has no attribute {name!r}")
