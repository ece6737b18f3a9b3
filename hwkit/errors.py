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


class ConfigError(HwkitError):
    """A saved configuration (in a checkpoint, store or style) does not read back: unknown keys, bad values."""


class OptionError(HwkitError):
    """Options that cannot work together; the CLI reports it as a usage error (exit code 2).

    ``names`` are the keyword arguments at fault (``max_norm``); the CLI shows them
    as its flags (``--max-norm``).
    """

    def __init__(self, names: str | tuple[str, ...], why: str):
        self.names = (names,) if isinstance(names, str) else tuple(names)
        self.why = why
        super().__init__(f"{', '.join(self.names)}: {why}")


class NothingToDo(HwkitError):
    """A request that is already fulfilled (a resumed run at its step or epoch limit); not a failure."""
