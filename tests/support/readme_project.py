"""A fresh project to run a README's blocks in, as a newcomer would after cloning.

The project is a copy of the checkout's tracked files (`git ls-files`: what a clone has, with
the working tree's edits, so a README change is tested before it is committed), without
`var/`, `.env` or anything else a developer's checkout has gathered. Installing its
dependencies again would take a network and a minute, so its `.venv` is a link to the
environment running the tests, which `uv sync --locked` made from the same lock file; the
project's own `app/` comes first on the path (PYTHONPATH), so the code run is the copy's.
Commands see no NIGHTDESK_* setting, no activated virtualenv and no `.venv/bin` on PATH:
`nightdesk` must be called as the README calls it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import clean_env, free_port, serving, wait_until_ready
from tests.support.readme import Block, console_commands

BLOCK_TIMEOUT = 120  # seconds for one block; the slowest (a call) takes under 10
MARK = "@@readme-test"
DEMO_PORT, SANDBOX_PORT = 8000, 8001  # where the README says `nightdesk demo` serves


@dataclass(frozen=True)
class Ran:
    """A command as run: its text, the output it printed (stdout and stderr together), its
    exit status, and the output the README shows for it."""

    line: int
    command: str
    output: str
    status: int
    expected: str = ""


def copy_tracked_files(checkout: Path, destination: Path) -> None:
    """The files a clone of `checkout` would have, as they are in its working tree."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=checkout, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = checkout / name
        if not source.exists():  # deleted in the working tree, not yet in the index
            continue
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)


class ReadmeProject:
    """A copy of the checkout to run README blocks in, one after another, sharing its files
    and database as a reader's terminal would. `nightdesk demo` is started the first time a
    block needs it and left running for the blocks after it."""

    def __init__(self, checkout: Path, root: Path) -> None:
        self.root = root
        copy_tracked_files(checkout, root)
        (root / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
        venv_bin = str(Path(sys.prefix) / "bin")
        path = os.pathsep.join(
            entry for entry in os.environ.get("PATH", "").split(os.pathsep) if entry != venv_bin
        )
        self.env = clean_env(
            PATH=path,
            PYTHONPATH=str(root),
            COLUMNS="80",  # help wraps at the terminal width: the README shows an 80-column one
            NO_COLOR="1",
            TERM="dumb",
            # A block that runs uv must not re-install the tests' own environment from here:
            # it gets one of its own, from uv's cache only.
            UV_PROJECT_ENVIRONMENT=str(root / ".venv-uv"),
            UV_OFFLINE="1",
        )
        self._stack = ExitStack()
        self._demo_ports: tuple[int, int] | None = None

    def close(self) -> None:
        self._stack.close()

    # --- blocks ------------------------------------------------------------------------------

    def run(self, block: Block) -> list[Ran]:
        """Run a block: a `sh` block as one script, a `console` block command by command."""
        rewrite = self._demo_rewrite() if block.needs_demo else {}
        if block.language == "sh":
            script = _rewritten(block.text, rewrite)
            # In a subshell, so the first failure ends the block but not the markers.
            output, statuses = self._bash(_marked(0, f"(\nset -eo pipefail\n{script}\n)"))
            return [Ran(block.line + 1, script, output.get(0, ""), statuses.get(0, -1))]
        commands = console_commands(block)
        script = "".join(
            _marked(number, _rewritten(c.command, rewrite)) for number, c in enumerate(commands)
        )
        output, statuses = self._bash(script)
        return [
            Ran(c.line, c.command, output.get(n, ""), statuses.get(n, -1), c.expected)
            for n, c in enumerate(commands)
        ]

    def _bash(self, script: str) -> tuple[dict[int, str], dict[int, int]]:
        """Run `script` in bash from the project's root; each marked command's output and
        exit status (a command that never ended has none)."""
        try:
            done = subprocess.run(
                ["bash", "-c", f"exec 2>&1\n{script}"],
                cwd=self.root,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                text=True,
                timeout=BLOCK_TIMEOUT,
                check=False,
            )
            printed = done.stdout
        except subprocess.TimeoutExpired as expired:
            printed = _text(expired.stdout) + f"\n(still running after {BLOCK_TIMEOUT} s)"
        return _split_marked(printed)

    # --- the demo ------------------------------------------------------------------------------

    def _demo_rewrite(self) -> dict[str, str]:
        """Start `nightdesk demo` on free ports (8000 may be taken on a shared machine) the
        first time, and point the README's 127.0.0.1:8000 and :8001 at them."""
        if self._demo_ports is None:
            self._demo_ports = self._start_demo()
        web, sandbox = self._demo_ports
        return {
            f"127.0.0.1:{DEMO_PORT}": f"127.0.0.1:{web}",
            f"127.0.0.1:{SANDBOX_PORT}": f"127.0.0.1:{sandbox}",
        }

    def _start_demo(self) -> tuple[int, int]:
        web = free_port()
        while not _is_free(web + 1):  # the demo's fake Twilio listens on the next port
            web = free_port()
        log = self.root / "demo.log"
        command: list[str | Path] = [".venv/bin/nightdesk", "demo", "--port", str(web)]
        server = self._stack.enter_context(serving(command, self.env, self.root, log))
        wait_until_ready(f"http://127.0.0.1:{web}/readyz", server, log, within=60)
        return web, web + 1

    def demo_log(self) -> str:
        log = self.root / "demo.log"
        return log.read_text() if log.exists() else ""


def _is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _rewritten(text: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        text = text.replace(old, new)
    return text


def _marked(number: int, command: str) -> str:
    """A command between markers that say where its output starts and how it ended."""
    return (
        f"printf '\\n{MARK} start {number}\\n'\n"
        f"{command}\n"
        f"__readme_status=$?; printf '\\n{MARK} end {number} %d\\n' \"$__readme_status\"\n"
    )


def _split_marked(printed: str) -> tuple[dict[int, str], dict[int, int]]:
    outputs: dict[int, str] = {}
    statuses: dict[int, int] = {}
    current: int | None = None
    lines: list[str] = []
    for line in printed.split("\n"):
        if line.startswith(f"{MARK} start "):
            current, lines = int(line.split()[2]), []
        elif line.startswith(f"{MARK} end ") and current is not None:
            _, _, number, status = line.split()
            outputs[current], statuses[int(number)] = "\n".join(lines), int(status)
            current = None
        elif current is not None:
            lines.append(line)
    if current is not None:  # it never ended: keep what it printed
        outputs[current] = "\n".join(lines)
    return outputs, statuses


def _text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value or ""
