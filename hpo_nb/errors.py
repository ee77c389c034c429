"""Errors a user can act on. Each message says what to do next."""

from __future__ import annotations


class HpoNbError(Exception):
    """Base class for every error hpo-nb raises on purpose."""


class ConfigError(HpoNbError, ValueError):
    """Bad input, detected before any training starts; the message names the setting and what
    to use instead (also a ``ValueError``).

    Args:
        message: what is wrong and what to do, in ``Experiment``'s argument names.
        cli: the same in ``hpo-nb``'s flags (``--max-epochs``), where they differ; what the
            command prints. None: the message serves both.
    """

    def __init__(self, message: str = "", *, cli: str | None = None) -> None:
        super().__init__(message)
        self.cli = cli


class DatasetUnavailableError(HpoNbError, RuntimeError):
    """A dataset could not be loaded (usually: no internet for a download); also a
    ``RuntimeError``."""
