"""The package version, in a module of its own so that any part of gansr can read it without
importing the root package (which sits above every layer)."""

__version__ = "0.1.0"
