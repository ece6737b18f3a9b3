"""Errors a user can fix.

Every ``HwkitError`` is reported by the CLI as one line on stderr with exit
code 1; anything else is a bug and keeps its traceback. Each kind names the
thing that is wrong so that callers (and tests) can tell them apart.
"""


class HwkitError(Exception):
    """Base for errors caused by inputs, files or options rather than by bugs."""


class CorpusError(HwkitError):
    """A corpus folder or archive does not have the expected IAM-OnDB layout."""


class StoreError(HwkitError):
    """A stroke store is missing, foreign, of an unknown version or inconsistent."""


class CheckpointError(HwkitError):
    """A checkpoint is missing, unreadable or does not fit the request."""


class TextError(HwkitError):
    """Text holds characters the alphabet cannot encode."""


class TrainingError(HwkitError):
    """Training cannot go on: bad options for this store, or the loss keeps diverging."""


class StyleError(HwkitError):
    """A style file is missing, foreign or malformed."""
