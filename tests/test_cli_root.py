"""The root command: help, version, lazy imports, error reporting."""

import subprocess
import sys
from pathlib import Path

import inspect

import click
import pytest
from click.testing import CliRunner

from hwkit import __version__
from hwkit.cli import COMMANDS, LazyGroup, cli
from hwkit.errors import StoreError


def test_version_and_help():
    runner = CliRunner()
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output
    result = runner.invoke(cli, ["-h"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output


@pytest.mark.parametrize("args", [["--help"], *[[name, "--help"] for name in COMMANDS]])
def test_help_does_not_import_heavy_modules(args):
    code = (
        "import sys\n"
        "from hwkit.cli import cli\n"
        f"try:\n    cli({args!r})\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
        "heavy = sorted(m for m in ('torch', 'h5py', 'matplotlib', 'numpy', 'rich.progress') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def _commands():
    for name in COMMANDS:
        command = cli.get_command(None, name)
        yield name, command
        for sub in getattr(command, "commands", {}).values():
            yield f"{name} {sub.name}", sub


@pytest.mark.parametrize("name, command", list(_commands()), ids=lambda x: x if isinstance(x, str) else "")
def test_every_command_help_starts_imperative_and_ends_with_example(name, command):
    text = inspect.cleandoc(command.help)
    first = text.split()[0]
    assert first[0].isupper() and not first.endswith(("s", "ing")) and first not in ("The", "This", "A"), name
    last = text.split("\n\n")[-1].lstrip("\b").strip()
    assert last.startswith(("Example:", "Examples:")) and len(last.splitlines()) >= 2, name
    assert CliRunner().invoke(cli, [*name.split(), "--help"]).exit_code == 0


def _group_with(callback):
    @click.group(cls=LazyGroup)
    def root():
        pass

    root.command("boom")(callback)
    return root


def test_user_errors_are_one_line_on_stderr_with_exit_1(monkeypatch):
    def boom():
        raise StoreError("cache/x.h5: not an hwkit stroke store")

    monkeypatch.setattr(LazyGroup, "list_commands", click.Group.list_commands)
    monkeypatch.setattr(LazyGroup, "get_command", click.Group.get_command)
    root = _group_with(boom)
    result = CliRunner().invoke(root, ["boom"])
    assert result.exit_code == 1
    assert result.stderr == "error: cache/x.h5: not an hwkit stroke store\n"
    assert "Traceback" not in result.output

    monkeypatch.setenv("HWKIT_DEBUG", "1")
    result = CliRunner().invoke(root, ["boom"])
    assert isinstance(result.exception, StoreError)


def test_bad_usage_exits_2():
    result = CliRunner().invoke(cli, ["no-such-command"])
    assert result.exit_code == 2


def test_a_path_the_disk_refuses_is_one_line_not_a_traceback(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("blocker").write_text("a file where a folder should be")
    result = CliRunner().invoke(cli, ["prepare", "--demo", "--lines", "4", "--writers", "1", "-o", "blocker/x.h5"])
    assert result.exit_code == 1 and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "blocker: a file is in the way" in result.stderr and "Traceback" not in result.output
    assert not Path("data").exists()  # refused before the corpus was generated
