"""User-facing errors.

Anything a user can cause (a missing folder, a corrupt image, a bad config key) raises a
:class:`GansrError` subclass with a one-line message. The CLI prints it as
``gansr: error: <message>`` and exits non-zero, without a traceback. Programming errors stay
ordinary exceptions so they keep their tracebacks.
"""

from __future__ import annotations


class GansrError(Exception):
    """Base class of errors whose message is meant for the user (one line, no traceback)."""


class ConfigError(GansrError):
    """A configuration value is missing, unknown, of the wrong type or out of range."""


class DataError(GansrError):
    """An input file or dataset folder cannot be used (missing, empty, corrupt, too large)."""


class ModelError(GansrError):
    """A model name, checkpoint or state dict cannot be resolved or loaded."""


class DownloadError(GansrError):
    """A file could not be downloaded or failed its checksum."""


class Interrupted(GansrError):
    """The user stopped long work (Ctrl-C / SIGTERM) and it stopped cleanly; the message says
    what was kept (e.g. the checkpoint to resume from). The CLI exits 130."""
