"""The README is tested: its shell blocks run, in order, in a fresh copy of the project, and
print what it shows; the commands and options its synopses name exist. The convention is at the
top of README.md and in tests/support/readme.py.

The blocks run on the embedded SQLite default, as a newcomer runs them, so they run on the
SQLite pass of `scripts/test` only. The tests of the harness itself (made-up READMEs) run on
both passes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main

from app.cli import app as nightdesk_app
from tests.databases import postgres_server_url
from tests.support.readme import (
    Block,
    console_commands,
    expected_pattern,
    extract_blocks,
    output_matches,
    synopsis_lines,
)
from tests.support.readme_project import Ran, ReadmeProject

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BLOCKS = extract_blocks(README.read_text())
SHELL_BLOCKS = [block for block in BLOCKS if block.runs]
SYNOPSES = [block for block in BLOCKS if block.is_synopsis]


def block_id(block: Block) -> str:
    return f"README.md:{block.line}"


# --- the README ---------------------------------------------------------------------------------


def test_the_readme_has_shell_blocks_to_run_and_synopses_to_check() -> None:
    """A reformatted README that the harness no longer reads fails here, not silently."""
    assert [block for block in SHELL_BLOCKS if block.skip_reason is None], "no block to run"
    assert [block for block in SHELL_BLOCKS if block.language == "console"]
    assert SYNOPSES, "no `<!-- readme-test: synopsis -->` block"


def test_every_shell_session_in_the_readme_is_fenced_to_run() -> None:
    """A block showing `$ command` lines runs: fenced `console` (or skipped with a reason),
    never left bare, where the harness would pass over it."""
    unfenced = [
        block_id(block)
        for block in BLOCKS
        if not block.runs and any(line.startswith("$ ") for line in block.text.splitlines())
    ]
    assert not unfenced, f"fence these as console: {', '.join(unfenced)}"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReadmeProjectRun]:
    if postgres_server_url() is not None:
        pytest.skip(
            "the README's commands use the embedded SQLite default: the SQLite pass runs them"
        )
    run = ReadmeProjectRun(ReadmeProject(ROOT, tmp_path_factory.mktemp("readme") / "project"))
    try:
        yield run
    finally:
        run.project.close()


class ReadmeProjectRun:
    """Runs the README's blocks in order, once each: a test for a later block first runs the
    ones before it (so `-k` can pick one), whose failures are reported by their own tests."""

    def __init__(self, project: ReadmeProject) -> None:
        self.project = project
        self.results: dict[int, list[Ran]] = {}

    def through(self, block: Block) -> list[Ran]:
        for earlier in SHELL_BLOCKS:
            if earlier.skip_reason is None and earlier.line not in self.results:
                self.results[earlier.line] = self.project.run(earlier)
            if earlier is block:
                break
        return self.results[block.line]


@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=block_id)
def test_readme_block_runs_and_prints_what_it_shows(
    block: Block, project: ReadmeProjectRun
) -> None:
    if block.skip_reason is not None:
        pytest.skip(f"{block_id(block)}: {block.skip_reason}")
    problems = [
        problem for ran in project.through(block) if (problem := what_is_wrong(ran)) is not None
    ]
    if problems and block.needs_demo:
        problems.append(f"--- nightdesk demo's output:\n{project.project.demo_log()}")
    assert not problems, "\n\n".join(problems)


def what_is_wrong(ran: Ran) -> str | None:
    """Why a command does not do what the README shows, or None if it does."""
    where = f"README.md:{ran.line}: $ {ran.command}"
    if ran.status == -1:
        return f"{where}\ndid not finish; it printed:\n{ran.output}"
    if ran.status != 0:
        return f"{where}\nexited {ran.status}; it printed:\n{ran.output}"
    if not output_matches(ran.expected, ran.output):
        return f"{where}\nprinted:\n{ran.output}\nbut the README shows:\n{ran.expected}"
    return None


# --- the commands and options the README names --------------------------------------------------


@pytest.mark.parametrize("block", SYNOPSES, ids=block_id)
def test_the_commands_and_options_a_synopsis_names_exist(block: Block) -> None:
    """`nightdesk flows check [PATH…]` in the README: `flows check` is a command, and each
    `--option` it names is one of that command's (the same as its --help lists)."""
    lines = synopsis_lines(block)
    assert lines, f"{block_id(block)}: no `nightdesk …` line"
    root = typer.main.get_command(nightdesk_app)
    problems = []
    for words, options in lines:
        for command, path in commands_named(root, words):
            if not path:
                problems.append(f"`nightdesk {' '.join(words)}`: no such command")
                continue
            known = {opt for param in command.params for opt in param.opts}
            missing = [option for option in options if option not in known]
            if missing:
                problems.append(f"`nightdesk {' '.join(path)}` has no {', '.join(missing)}")
    assert not problems, f"{block_id(block)}:\n" + "\n".join(problems)


def commands_named(root: Any, words: list[str]) -> list[tuple[Any, list[str]]]:
    """The commands the leading words name (`add|list` names two), with their paths. (Typer
    carries its own copy of click, so groups are known by their `commands`.)"""
    found: list[tuple[Any, list[str]]] = [(root, [])]
    for word in words:
        subcommands: dict[str, Any] = getattr(found[0][0], "commands", {})
        names = word.split("|")
        if not subcommands or not all(name in subcommands for name in names):
            break
        found = [(subcommands[name], [*found[0][1], name]) for name in names]
    return found


# --- the harness itself, on made-up READMEs ---------------------------------------------------

MADE_UP = """\
# A tool

<!-- readme-test: skip, needs docker -->
```sh
docker build .
```

```console
$ tool greet --at 2026-12-25T02:00 \\
      --name Sam
Hello Sam, it is 02:00 on <date>. ...
(took <duration>)
$ tool list
...
#1 done
```

```yaml
not: run
```

<!-- readme-test: synopsis -->
```
nightdesk flows check [PATH…]        check flow files
nightdesk webhooks add|list [--client C]
```
"""


def test_the_harness_reads_each_block_with_its_language_line_and_directive() -> None:
    blocks = extract_blocks(MADE_UP)

    assert [(b.line, b.language, b.runs) for b in blocks] == [
        (4, "sh", True),
        (8, "console", True),
        (18, "yaml", False),
        (23, "", False),
    ]
    assert blocks[0].skip_reason == "needs docker"
    assert blocks[1].skip_reason is None
    assert blocks[3].is_synopsis


def test_a_console_block_is_commands_each_with_the_output_shown_after_it() -> None:
    commands = console_commands(extract_blocks(MADE_UP)[1])

    assert [(c.line, c.command) for c in commands] == [
        (9, "tool greet --at 2026-12-25T02:00 \\\n      --name Sam"),
        (13, "tool list"),
    ]
    assert commands[0].expected == "Hello Sam, it is 02:00 on <date>. ...\n(took <duration>)"


def test_output_matches_with_times_ids_and_durations_left_open() -> None:
    shown = console_commands(extract_blocks(MADE_UP)[1])

    greet = "Hello Sam, it is 02:00 on 2026-12-25. Merry Christmas!\n(took 1.5 s)\n"
    assert output_matches(shown[0].expected, greet)
    assert output_matches(shown[1].expected, "#3 new\n#2 new\n#1 done\n")
    assert output_matches(shown[1].expected, "#1 done  \n\n")  # trailing spaces, blank lines


def test_output_that_differs_from_what_the_readme_shows_fails() -> None:
    """The negative check: one expected output changed, and the harness says no."""
    changed = MADE_UP.replace("Hello Sam", "Goodbye Sam")
    shown = console_commands(extract_blocks(changed)[1])[0].expected

    greet = "Hello Sam, it is 02:00 on 2026-12-25. Merry Christmas!\n(took 1.5 s)\n"
    assert not output_matches(shown, greet)
    assert not output_matches("Hello <n>", "Hello Sam")  # a placeholder is not `...`
    assert not output_matches("#1 done", "#1 done\n#2 extra line")  # nothing more
    assert not output_matches("a\nb", "b")  # nothing less
    assert not output_matches("(took <duration>)", "(took soon)")


def test_an_unknown_placeholder_is_plain_text() -> None:
    assert output_matches("--flag <bool>", "--flag <bool>")
    assert expected_pattern("a.b").fullmatch("a.b\n")
    assert not expected_pattern("a.b").fullmatch("axb\n")


def test_a_synopsis_line_is_its_words_and_the_options_it_names() -> None:
    synopsis = extract_blocks(MADE_UP)[3]

    assert synopsis_lines(synopsis) == [
        (["flows", "check", "[PATH…]"], []),
        (["webhooks", "add|list", "[--client", "C]"], ["--client"]),
    ]
    root = typer.main.get_command(nightdesk_app)
    assert [path for _, path in commands_named(root, ["webhooks", "add|list", "[--client"])] == [
        ["webhooks", "add"],
        ["webhooks", "list"],
    ]
    assert commands_named(root, ["no-such-thing"])[0][1] == []
