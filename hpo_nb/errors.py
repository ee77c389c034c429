"""Errors a user can act on. Each message says what to do next."""

from __future__ import annotations


class HpoNbError(Exception):
    """Base class for every error hpo-nb raises on purpose."""


class ConfigError(HpoNbError, ValueError):
    """Bad input, detected before any training starts; the message names the setting and what
    to use instead (also a ``ValueError``)."""


class DatasetUnavailableError(HpoNbError, RuntimeError):
    """A dataset could not be loaded (usually: no internet for a download); also a
    ``RuntimeError``."""
