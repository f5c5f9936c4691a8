"""The `nightdesk` command, run in-process as a shell would run it."""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

from app.cli import app

runner = CliRunner()


def nightdesk(*args: str, stdin: str | None = None) -> tuple[int, str]:
    """Exit code and output; `call` reads --press/--say order from sys.argv."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", ["nightdesk", *args])
        result = runner.invoke(app, list(args), input=stdin)
    return result.exit_code, result.output
