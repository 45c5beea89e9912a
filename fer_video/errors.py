"""The project's exception types. The CLI and the UI turn these into one-line messages, each in one place."""

from __future__ import annotations


class FerVideoError(Exception):
    """Base class: an expected failure with a message fit to show a user as it is."""


class SettingsError(FerVideoError):
    """A setting is out of range (``Settings.check``); the CLI reports it as a usage error."""


class InputError(FerVideoError):
    """The input video cannot be used (missing, not a video, corrupt, no video stream, zero frames)."""


class OutputError(FerVideoError):
    """Outputs cannot be written (folder not writable, disk full...)."""


class WeightsError(FerVideoError):
    """A weights file or its metadata is missing, corrupt or does not match."""


class DataError(FerVideoError):
    """A training or evaluation dataset cannot be read."""


class Cancelled(FerVideoError):
    """The caller asked the running job to stop."""
