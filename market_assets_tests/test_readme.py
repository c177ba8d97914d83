"""Every example of README.md runs as shown on the demo's lake, on any day.

The demo is run once, by the README's own first command, in a temporary folder; each example then
runs in bash from that folder, in the README's order, with the variables the README's `export`
lines set there, and must exit with 0 and print something that is not an error.

Which commands are examples is a rule, not a list:

- the commands of the README's ```bash blocks that run `python -m market_assets` or
  `python -m stooq_server` (as `.venv/bin/python` or `python`, after any `NAME=value`), with this
  interpreter in place of the README's;
- every ```python block, run as a script.

The other commands of the ```bash blocks are shown, not run, and so are blocks in other languages
(```text, ```yaml, ```sh): the setup commands (`python3 -m venv ...`, whose `demo` is the one the
fixture runs), the deployment's (`docker`, `kubectl`, `helm`), the `dagster` ones. `export` lines
set the environment of the examples after them. An example ending in `&` is a server: it is started
in the background, must print a line, and runs until the module's tests end. An example whose
comment says `until Ctrl-C` must print a line, and is then stopped as by Ctrl-C.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from market_assets_tests.platform import PROJECT_ROOT
from market_assets_tests.polling import wait_for
from stooq_server.synthetic import SyntheticUniverse

README = PROJECT_ROOT / "README.md"

FRESH_MACHINE = (
    "python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/python -m market_assets demo",
    "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/python -m pytest market_assets_tests",
)
"""The two commands for a fresh machine: people run them as they are, and `.ci/run` runs the second
with ruff between its install and its tests."""

REQUIRED_VERBS = {"plan", "read", "sql", "close", "verify", "compact"}
"""The commands the README must show an example of."""

RUNNABLE_MODULES = ("market_assets", "stooq_server")
INTERPRETERS = ("python", ".venv/bin/python")
_INTERPRETER = re.compile(r"(?<![\w./-])(?:\.venv/bin/)?python(?= +-m +(?:market_assets|stooq_server)\b)")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_ERROR = re.compile(r"Traceback \(most recent call last\)|Error\b|\berror\b|FAILED|Empty DataFrame")
"""What an example's output must not show: an exception, a refusal, a failed run, an empty result."""
_UNTIL_CTRL_C = "until ctrl-c"
COMMAND_SECONDS = 600
FIRST_LINE_SECONDS = 120


@dataclass(frozen=True)
class Example:
    """One example of the README: a shell command or a Python script, with the `export` lines and
    the servers that come before it there."""

    number: int
    language: str
    text: str
    exports: tuple[str, ...] = ()
    servers: tuple[Example, ...] = ()

    @property
    def words(self) -> list[str]:
        return _words(self.text) if self.language == "bash" else []

    @property
    def verb(self) -> str | None:
        """`close` of `python -m market_assets close DJI`; None for a script or a server of stooq_server."""
        words = self.words
        return words[3] if len(words) > 3 and words[2] == "market_assets" else None

    @property
    def background(self) -> bool:
        return self.words[-1:] == ["&"]

    @property
    def until_ctrl_c(self) -> bool:
        return _UNTIL_CTRL_C in self.text.lower()

    @property
    def shell(self) -> str:
        """The command as bash runs it: this interpreter for the README's, without a trailing `&`."""
        command = _INTERPRETER.sub(shlex.quote(sys.executable), self.text)
        return re.sub(r"\s&(\s*#.*)?\s*$", r" \1", command) if self.background else command

    @property
    def name(self) -> str:
        first = " ".join(self.text.split())
        first = _INTERPRETER.sub("python", first).removeprefix("python -m ")
        return f"{self.number:02d}-{self.language}-{first[:60]}"


def _words(command: str) -> list[str]:
    """The command's words without its `NAME=value` prefixes and its comment."""
    words = shlex.split(command, comments=True)
    while words and _ASSIGNMENT.match(words[0]):
        words.pop(0)
    return words


def shell_commands(block: str) -> list[str]:
    """The commands of a bash block: a line, with those a trailing backslash or an open quote join to it."""
    commands, pending = [], ""
    for line in block.splitlines():
        pending = f"{pending}\n{line}" if pending else line
        if pending.rstrip().endswith("\\"):
            continue
        try:
            words = shlex.split(pending, comments=True)
        except ValueError:  # a quote still open: the command goes on
            continue
        if words:
            commands.append(pending)
        pending = ""
    assert not pending, f"README.md: a command never ends: {pending!r}"
    return commands


def is_example(command: str) -> bool:
    words = _words(command)
    return len(words) > 2 and words[0] in INTERPRETERS and words[1] == "-m" and words[2] in RUNNABLE_MODULES


@dataclass
class ReadmeExamples:
    """What README.md runs, shows and sets, in its order."""

    examples: list[Example] = field(default_factory=list)
    shown: list[str] = field(default_factory=list)
    """The commands of its bash blocks that are not examples, and the blocks in other languages."""
    bash_commands: list[str] = field(default_factory=list)


def readme_examples(text: str) -> ReadmeExamples:
    found = ReadmeExamples()
    exports: list[str] = []
    servers: list[Example] = []
    for language, block in _FENCE.findall(text):
        if language == "python":
            found.examples.append(Example(len(found.examples) + 1, "python", block, tuple(exports), tuple(servers)))
            continue
        if language != "bash":
            found.shown.append(f"```{language or 'plain'} block: {block.splitlines()[0] if block else ''}")
            continue
        for command in shell_commands(block):
            found.bash_commands.append(command)
            if _words(command)[:1] == ["export"]:
                exports.append(command)
            elif is_example(command):
                example = Example(len(found.examples) + 1, "bash", command, tuple(exports), tuple(servers))
                found.examples.append(example)
                if example.background:
                    servers.append(example)
            else:
                found.shown.append(command)
    return found


EXAMPLES = readme_examples(README.read_text())


def test_the_readme_keeps_the_fresh_machine_commands_and_shows_every_command():
    """The two setup commands are there as CI runs them, and each of plan, read, sql, close, verify and
    compact has a runnable example: the test fails if the README stops showing one."""
    for command in FRESH_MACHINE:
        assert command in EXAMPLES.bash_commands, f"README.md lost its fresh-machine command {command!r}"
    verbs = {example.verb for example in EXAMPLES.examples}
    assert verbs >= REQUIRED_VERBS, f"README.md has no runnable example of {sorted(REQUIRED_VERBS - verbs)}"
    assert any(example.language == "python" for example in EXAMPLES.examples)
    assert len(README.read_text().splitlines()) <= 300, "README.md is a guide read in one sitting: details go to docs/"
    print("\nrun:", *(example.name for example in EXAMPLES.examples), sep="\n  ")
    print("shown, not run:", *(" ".join(shown.split())[:100] for shown in EXAMPLES.shown), sep="\n  ")


def test_the_rule_tells_examples_from_commands_that_are_only_shown():
    block = (
        'export A=1\n.venv/bin/python -m market_assets sql "SELECT 1\n  AS one"\n'
        "X=2 python -m market_assets read daily S.US | tail -3   # a comment\n"
        "python3 -m venv .venv && .venv/bin/python -m market_assets demo\nkubectl -n x get svc\n"
        ".venv/bin/python -m stooq_server serve --data-dir d &   # until killed\n"
        "helm upgrade --install m dagster/dagster \\\n  -f values.yaml\n.venv/bin/python bench/read_lake.py\n"
    )
    found = readme_examples(f"```bash\n{block}```\n```sh\n.venv/bin/python -m market_assets sql 'x'\n```\n")

    assert [example.verb for example in found.examples] == ["sql", "read", None]
    assert found.examples[1].exports == ("export A=1",)
    assert found.examples[2].background and found.examples[2].shell.rstrip().endswith("# until killed")
    assert "&" not in found.examples[2].shell
    assert found.examples[1].shell.startswith(f"X=2 {shlex.quote(sys.executable)} -m market_assets read")
    assert len(found.shown) == 5  # venv, kubectl, helm, bench, and the sh block


@pytest.fixture(scope="module")
def demo_parent(tmp_path_factory: pytest.TempPathFactory, synthetic_universe: SyntheticUniverse) -> Path:
    """A folder in which the README's first command has run the demo: `./demo/lake`, `./demo/dagster_home`.
    The synthetic data set is the session's, copied as a demo leaves it, so it is not generated twice."""
    parent = tmp_path_factory.mktemp("readme")
    shutil.copytree(synthetic_universe.data_dir, parent / "demo" / "stooq-synthetic")
    demo = FRESH_MACHINE[0].rsplit("&&", 1)[1].strip()
    done = _run(Example(0, "bash", demo), parent, user_environment())
    assert done.returncode == 0, f"the demo failed:\n{done.stdout[-5000:]}"
    assert "index_membership" in done.stdout and (parent / "demo" / "lake" / "index_membership.parquet").is_file()
    return parent


def user_environment() -> dict[str, str]:
    """This process's environment without the project's and Dagster's variables, as a user's shell
    has it before the README sets any (the tests' own partition window among them)."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("MARKET_ASSETS_", "STOOQ_", "DAGSTER_", "PYTEST_"))
    }


@dataclass
class Servers:
    """The README's background servers, started once each and stopped when the module's tests end."""

    parent: Path
    started: dict[int, subprocess.Popen] = field(default_factory=dict)

    def ensure(self, example: Example, env: dict[str, str]) -> None:
        if example.number not in self.started:
            process = self.started[example.number] = _start(example, self.parent, env)
            output = _first_output(example, process)
            assert process.poll() is None, f"{example.text}\nexited with {process.returncode}:\n{output}"


@pytest.fixture(scope="module")
def servers(demo_parent: Path) -> Iterator[Servers]:
    running = Servers(demo_parent)
    yield running
    for process in running.started.values():
        _stop(process, signal.SIGTERM)


@pytest.mark.parametrize("example", EXAMPLES.examples, ids=lambda example: example.name)
def test_the_readme_example_runs_on_the_demos_lake(example: Example, demo_parent: Path, servers: Servers):
    env = environment(example.exports, demo_parent)
    for server in example.servers:  # the servers the README started before this example
        servers.ensure(server, environment(server.exports, demo_parent))
    if example.background:
        servers.ensure(example, env)
        return
    if example.until_ctrl_c:
        process = _start(example, demo_parent, env)
        try:
            _first_output(example, process)
        finally:
            _stop(process, signal.SIGINT)
        return
    started = time.monotonic()
    done = _run(example, demo_parent, env)
    assert done.returncode == 0, f"{example.text}\nexited with {done.returncode}:\n{done.stdout[-5000:]}"
    _expect_output(example, done.stdout)
    print(f"{example.name}: {time.monotonic() - started:.1f} s")


def environment(exports: tuple[str, ...], cwd: Path) -> dict[str, str]:
    """The user's environment after the README's `export` lines, evaluated by bash in `cwd`."""
    script = "\n".join([*exports, "env -0"])
    done = subprocess.run(["bash", "-c", script], cwd=cwd, env=user_environment(), capture_output=True, text=True, check=True)
    return dict(entry.split("=", 1) for entry in done.stdout.split("\0") if "=" in entry)


def _run(example: Example, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """The example's exit status and its output (stdout and stderr together); a pipeline fails when any of its commands does."""
    if example.language == "python":
        command = [sys.executable, "-c", example.text]
    else:
        command = ["bash", "-o", "pipefail", "-c", example.shell]
    return subprocess.run(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=COMMAND_SECONDS
    )


def _start(example: Example, cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    """Start a command that runs until stopped, in a process group of its own, its output read as it comes."""
    process = subprocess.Popen(
        ["bash", "-c", example.shell],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    process.lines = []  # type: ignore[attr-defined]
    threading.Thread(target=lambda: process.lines.extend(process.stdout), daemon=True).start()
    return process


def _first_output(example: Example, process: subprocess.Popen) -> str:
    """What a started command printed once it printed a line (or ended), checked as an example's output."""
    wait_for(lambda: process.lines or process.poll() is not None, FIRST_LINE_SECONDS, f"a line of {example.text}", 0.1)
    if process.poll() is not None:
        time.sleep(1)  # the rest of what it printed before it ended
    output = "".join(process.lines)
    _expect_output(example, output)
    return output


def _stop(process: subprocess.Popen, signum: int) -> None:
    """Stop a process started by `_start` and everything it started (its own process group)."""
    if process.poll() is None:
        os.killpg(process.pid, signum)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def _expect_output(example: Example, output: str) -> None:
    assert output.strip(), f"{example.text}\nprinted nothing"
    error = _ERROR.search(output)
    assert error is None, f"{example.text}\nprinted {error.group(0)!r}:\n{output[-5000:]}"
