"""What the command line prints for warnings and file-system errors: one line each, no traceback (issue 17)."""

from __future__ import annotations

import errno
import warnings
from collections.abc import Iterator

import click
import pytest

from serkit.cli.main import cli
from serkit.testing.cli import run_cli


@pytest.fixture
def command() -> Iterator[list[BaseException | None]]:
    """A temporary ``serkit probe`` command that warns, then raises what the test puts in the list."""
    raised: list[BaseException | None] = [None]

    @click.command("probe")
    def probe() -> None:
        warnings.warn("the validation set has no utterances of ['sad']", UserWarning, stacklevel=1)
        warnings.warn("an old API", DeprecationWarning, stacklevel=1)
        if raised[0] is not None:
            raise raised[0]

    cli.add_command(probe)
    try:
        yield raised
    finally:
        cli.commands.pop("probe", None)


def test_warnings_are_one_line_without_source(command: list, capsys: pytest.CaptureFixture[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert run_cli(["probe"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "warning: the validation set has no utterances of ['sad']"
    assert err[1].startswith("warning (DeprecationWarning, ") and err[1].endswith(": an old API")
    assert len(err) == 2  # no source line such as 'warnings.warn(...)' or 'plan, splits = plan_splits(...)'


def test_a_full_disk_is_an_error_not_a_traceback(command: list, capsys: pytest.CaptureFixture[str]) -> None:
    command[0] = OSError(errno.ENOSPC, "No space left on device", "/runs/x/plots/confusion_xa.png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert run_cli(["probe"]) == 2
    assert capsys.readouterr().err == (
        "error: cannot write /runs/x/plots/confusion_xa.png: No space left on device (free some space or write "
        "elsewhere)\n"
    )
    command[0] = OSError(errno.EIO, "Input/output error")  # anything else is a bug: shown in full
    with warnings.catch_warnings(), pytest.raises(OSError):
        warnings.simplefilter("ignore")
        run_cli(["probe"])
