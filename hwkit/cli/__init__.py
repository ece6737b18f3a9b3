"""The ``hwkit`` command group.

Subcommands live in their own modules and are imported only when invoked (or
when ``--help`` lists them), and those modules import click alone at the top:
torch and h5py load inside the command functions, so ``hwkit --help`` is instant.
"""

from __future__ import annotations

import errno
import importlib
import os
import sys

import click

from hwkit import __version__
from hwkit.errors import HwkitError, OptionError

# name -> "module:attribute"; order is the order shown in --help
COMMANDS = {
    "prepare": "hwkit.cli.prepare:prepare",
    "inspect": "hwkit.cli.inspect:inspect",
    "train": "hwkit.cli.train:train",
    "sample": "hwkit.cli.sample:sample",
    "style": "hwkit.cli.style:style",
    "read": "hwkit.cli.read:read",
    "evaluate": "hwkit.cli.evaluate:evaluate",
    "compare": "hwkit.cli.compare:compare",
    "serve": "hwkit.cli.serve:serve",
}


# OSErrors that are the user's to fix (room, permissions, paths) rather than bugs
DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EEXIST,
               errno.EISDIR, errno.ENAMETOOLONG}  # fmt: skip


class UserError(click.ClickException):
    """An ``HwkitError`` shown as one line on stderr, exit code 1."""

    exit_code = 1

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", file=file or sys.stderr)


def flag_name(name: str) -> str:
    """The command-line spelling of a library keyword: max_norm -> --max-norm."""
    return {"kind": "--model", "output": "-o/--output"}.get(
        name, "--" + name.replace("_", "-"))


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except OptionError as exc:  # options that cannot go together: a usage error, exit 2
            if os.environ.get("HWKIT_DEBUG") == "1":
                raise
            raise click.UsageError(f"{', '.join(map(flag_name, exc.names))}: {exc.why}") from None
        except HwkitError as exc:
            if os.environ.get("HWKIT_DEBUG") == "1":
                raise
            raise UserError(str(exc)) from None
        except OSError as exc:  # the disk, not hwkit: full, read-only, a file where a folder should be
            if os.environ.get("HWKIT_DEBUG") == "1" or exc.errno not in DISK_ERRORS:
                raise
            where = f"{exc.filename}: " if exc.filename else ""
            raise UserError(f"{where}{exc.strerror or exc} (nothing was written under that name)") from None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="hwkit")
def cli() -> None:
    """Turn online handwriting into trained models and back into handwriting.

    \b
    Typical session:
      hwkit prepare               # demo corpus (or data/iamondb/) -> cache/<name>.h5
      hwkit inspect --n 20        # tables and pictures of the store
      hwkit train --preset demo   # LSTM + mixture density network
      hwkit sample --text "hello" # handwriting as SVG
      hwkit evaluate              # is it legible? loss, and the CER of its writing read back
      hwkit serve                 # the studio in the browser: write in any hand, record your own

    Set HWKIT_DEBUG=1 to see tracebacks.
    """


def main() -> None:
    cli(prog_name="hwkit")
