"""Reading a README as a test: its shell blocks, the commands in them, and output compared with
what the README shows beside them. Pure functions of text, so the harness itself is tested on
small made-up READMEs (tests/test_readme.py).

The convention (also written at the top of README.md):

- ```sh blocks are run, each as one bash script from the project's root; they must exit 0.
- ```console blocks show `$ command` lines (a line ending in `\\` goes on to the next), each
  followed by the output it prints (stdout and stderr, as a terminal shows them). The commands
  of a block run in one shell, in order; each must exit 0 and print what is shown.
- Every other block (```yaml, ```python, ```text, or no language) is an example to read.
- An HTML comment on the line before a block tells the harness more:
  `<!-- readme-test: skip, REASON -->` (not run, and REASON is reported),
  `<!-- readme-test: needs the demo running -->` (run with `nightdesk demo` serving), and
  `<!-- readme-test: synopsis -->` (a block of `nightdesk …` lines: each names a command and
  options that its `--help` lists).

In expected output, `...` (or `…`) stands for any text within a line, a line of just `...` for
any number of lines, and these names for what changes from run to run:
`<date>` 2026-12-25, `<time>` 02:00 or 02:00:07, `<n>` a number, `<port>` a port,
`<sid>` a Twilio id such as CA0123…, `<token>` a key or link token, `<duration>` 1.2 s or 30 ms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RUN_LANGUAGES = ("sh", "console")
DIRECTIVE = re.compile(r"<!--\s*readme-test:\s*(?P<body>.*?)\s*-->")
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")

PLACEHOLDERS = {
    "<date>": r"\d{4}-\d{2}-\d{2}",
    "<time>": r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?",
    "<n>": r"\d+",
    "<port>": r"\d{2,5}",
    "<sid>": r"[A-Z]{2}[0-9a-f]{32}",
    "<token>": r"[A-Za-z0-9_\-]+",
    "<duration>": r"\d+(?:\.\d+)? ?(?:ms|s)",
}
ANY_TEXT = ("...", "…")
ANY_LINES = {"...", "…"}
# Longest first, so "..." is not read as a placeholder inside a longer name.
_TOKENS = re.compile("|".join(re.escape(t) for t in [*PLACEHOLDERS, *ANY_TEXT]))


@dataclass(frozen=True)
class Block:
    """A fenced block: where it starts (1-based line of its opening fence), its language, its
    text, and the readme-test directive just before it (empty if none)."""

    line: int
    language: str
    text: str
    directive: str = ""

    @property
    def runs(self) -> bool:
        return self.language in RUN_LANGUAGES

    @property
    def skip_reason(self) -> str | None:
        """The reason given with `skip, REASON`, or None if the block is not skipped."""
        if not self.directive.startswith("skip"):
            return None
        return self.directive.removeprefix("skip").lstrip(" ,:") or "(no reason given)"

    @property
    def needs_demo(self) -> bool:
        return self.directive == "needs the demo running"

    @property
    def is_synopsis(self) -> bool:
        return self.directive == "synopsis"


@dataclass(frozen=True)
class Command:
    """One `$ command` of a console block, and the output shown after it."""

    line: int
    command: str
    expected: str


def extract_blocks(markdown: str) -> list[Block]:
    """Every fenced block of a Markdown document, in order."""
    blocks: list[Block] = []
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        body: list[str] = []
        end = index + 1
        while end < len(lines) and not _closes(lines[end], fence):
            body.append(lines[end][indent:] if lines[end][:indent].isspace() else lines[end])
            end += 1
        language = opening["info"].strip().split(" ")[0] if opening["info"].strip() else ""
        blocks.append(
            Block(index + 1, language, "\n".join(body) + "\n", _directive_before(lines, index))
        )
        index = end + 1
    return blocks


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return stripped.startswith(fence[0] * len(fence)) and not stripped.strip(fence[0])


def _directive_before(lines: list[str], index: int) -> str:
    """The readme-test directive on the nearest non-blank line above line `index`, if any."""
    for previous in reversed(lines[:index]):
        if previous.strip():
            found = DIRECTIVE.search(previous)
            return found["body"] if found else ""
    return ""


def console_commands(block: Block) -> list[Command]:
    """The `$ command` lines of a console block, continuation lines joined, with their output."""
    commands: list[Command] = []
    current: list[str] = []
    expected: list[str] = []
    start = 0
    lines = block.text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("$ "):
            if current:
                commands.append(Command(start, "\n".join(current), _text(expected)))
            start = block.line + 1 + index
            current, expected = [line[2:]], []
            while current[-1].endswith("\\") and index + 1 < len(lines):
                index += 1
                current.append(lines[index])
        elif current:
            expected.append(line)
        elif line.strip():
            raise ValueError(f"line {block.line + 1 + index}: output before any `$ command`")
        index += 1
    if current:
        commands.append(Command(start, "\n".join(current), _text(expected)))
    return commands


def _text(lines: list[str]) -> str:
    return "\n".join(lines)


def normalise(output: str) -> str:
    """Output as compared: no carriage returns, no trailing spaces, no blank lines at the end."""
    lines = [line.rstrip() for line in output.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def expected_pattern(expected: str) -> re.Pattern[str]:
    """A regular expression for the whole output shown, placeholders and `...` included."""
    parts: list[str] = []
    for line in normalise(expected).split("\n"):
        if line.strip() in ANY_LINES:
            parts.append(r"(?:[^\n]*\n)*?")
            continue
        pieces: list[str] = []
        position = 0
        for token in _TOKENS.finditer(line):
            pieces.append(re.escape(line[position : token.start()]))
            text = token.group()
            pieces.append(r"[^\n]*?" if text in ANY_TEXT else PLACEHOLDERS[text])
            position = token.end()
        pieces.append(re.escape(line[position:]))
        parts.append("".join(pieces) + r"\n")
    return re.compile("".join(parts))


def output_matches(expected: str, actual: str) -> bool:
    """Whether `actual` is what `expected` shows: every line, in order, nothing more."""
    if not normalise(expected):
        return True  # nothing shown: only the exit status counts
    return expected_pattern(expected).fullmatch(normalise(actual) + "\n") is not None


def synopsis_lines(block: Block) -> list[tuple[list[str], list[str]]]:
    """For each `nightdesk …` line of a synopsis block (a line ending in `\\` goes on to the
    next): the words after `nightdesk` up to its description, and the options it names."""
    found: list[tuple[list[str], list[str]]] = []
    for line in re.sub(r"\\\n\s*", " ", block.text).splitlines():
        if not line.startswith("nightdesk "):
            continue
        usage = re.split(r"\s{2,}", line.strip())[0]  # the description follows two spaces
        options = sorted(set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", usage)))
        found.append((usage.split()[1:], options))
    return found
