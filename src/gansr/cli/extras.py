"""Whether an optional extra's packages can be imported; :func:`gansr.errors.install_hint` says
how to add them."""

from __future__ import annotations

__all__ = ["has_module"]


def has_module(name: str) -> bool:
    """Whether ``import name`` works (imports it: a broken install counts as missing)."""
    import importlib

    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True
