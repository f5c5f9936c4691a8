"""Reading voice flow files: YAML to a checked `Flow`, each problem named by file, line and step.

PyYAML's composer gives us the node tree with line marks, so we build the plain data ourselves and
keep a map from each path (`('steps', 'greeting', 'next')`) to its line. Scalars are kept as the
text the author wrote (only `null` / `~` / an empty value become None) and pydantic converts them
to the types the schema wants. That sidesteps YAML 1.1's surprises: `words: [yes, no]` stays two
words, `country: NO` stays Norway, `handoff: 09:00` is not the number 540, and an unquoted
`+441134960000` keeps its plus sign.
"""

from __future__ import annotations

import hashlib
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from app.flows.check import check_flow
from app.flows.schema import Flow, Step

YamlPath = tuple[str | int, ...]
Lines = dict[YamlPath, int]

_NULL_TAG = "tag:yaml.org,2002:null"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_NAME_PATTERN = "^[a-z][a-z0-9_]*$"
_STEP_MODELS: dict[str, type[BaseModel]] = {
    typing.get_args(model.model_fields["type"].annotation)[0]: model
    for model in typing.get_args(typing.get_args(Step)[0])
}


@dataclass(frozen=True)
class FlowProblem:
    """One problem in one flow file, printed as `file:line: step 'id': message`."""

    path: str
    line: int  # 1-based; 0 when the problem is with the file as a whole
    step: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        step = f"step {self.step!r}: " if self.step else ""
        return f"{where}: {step}{self.message}"


class FlowFileError(Exception):
    """A flow file that cannot be used, with every problem found in it."""

    def __init__(self, problems: list[FlowProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class LoadedFlow:
    """A checked flow and the file text it came from (its sha256 tells a sync what changed)."""

    flow: Flow
    path: Path
    source: str
    sha256: str
    lines: Mapping[YamlPath, int] = field(default_factory=dict, repr=False, compare=False)

    def line_of(self, path: YamlPath) -> int:
        """The line that best matches a path into the file, for messages about this flow."""
        return _closest_line(self.lines, path)


def parse_flow(source: str, path: str) -> LoadedFlow:
    """Parse and check one flow file's text; raises FlowFileError with all the problems found."""
    problems: list[FlowProblem] = []

    def report(line: int, step: str | None, message: str) -> None:
        problems.append(FlowProblem(path, line, step, message))

    try:
        root = yaml.compose(source, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        detail = " ".join(part for part in (exc.context, exc.problem) if part)
        raise FlowFileError(
            [FlowProblem(path, mark.line + 1 if mark else 1, None, f"not valid YAML: {detail}")]
        ) from None
    except yaml.YAMLError as exc:  # e.g. a control character the reader refuses
        raise FlowFileError([FlowProblem(path, 0, None, f"not valid YAML: {exc}")]) from None
    if root is None:
        raise FlowFileError([FlowProblem(path, 0, None, "the file is empty")])
    if not isinstance(root, yaml.MappingNode):
        line = root.start_mark.line + 1
        raise FlowFileError([FlowProblem(path, line, None, "a flow file is a mapping of fields")])

    lines: Lines = {(): root.start_mark.line + 1}
    data = _plain(root, (), lines, report, set())
    try:
        flow = Flow.model_validate(data)
    except ValidationError as exc:
        for error_path, step, message in _explain(exc, data):
            report(_closest_line(lines, error_path), step, message)
    else:
        for problem in check_flow(flow):
            where = ("steps", problem.step, *problem.field) if problem.step else problem.field
            label = _label(problem.field)
            message = f"{label}: {problem.message}" if label else problem.message
            report(_closest_line(lines, where), problem.step, message)
    if problems:
        raise FlowFileError(sorted(problems, key=lambda p: p.line))
    sha256 = hashlib.sha256(source.encode()).hexdigest()
    return LoadedFlow(flow, Path(path), source, sha256, lines)


def load_flow_file(path: Path) -> LoadedFlow:
    """Read and check one flow file."""
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise FlowFileError([FlowProblem(str(path), 0, None, "is not UTF-8 text")]) from None
    except OSError as exc:
        problem = FlowProblem(str(path), 0, None, f"cannot be read: {exc.strerror}")
        raise FlowFileError([problem]) from None
    return parse_flow(source, str(path))


def load_flows(paths: Sequence[Path]) -> tuple[list[LoadedFlow], list[FlowProblem]]:
    """Load flow files and folders (their *.yaml and *.yml files); return the good flows and every
    problem, including two files claiming one client slug or phone number (the later one loses)."""
    loaded: list[LoadedFlow] = []
    problems: list[FlowProblem] = []
    seen: set[Path] = set()
    for file in _flow_files(paths, problems):
        if file.resolve() in seen:
            continue
        seen.add(file.resolve())
        try:
            candidate = load_flow_file(file)
        except FlowFileError as exc:
            problems.extend(exc.problems)
            continue
        clashes = list(_clashes(candidate, loaded))
        problems.extend(clashes)
        if not clashes:
            loaded.append(candidate)
    return loaded, problems


def _flow_files(paths: Sequence[Path], problems: list[FlowProblem]) -> Iterator[Path]:
    """The files to load, in the order given; paths that hold none are problems, in that order."""
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
            if not found:
                problems.append(FlowProblem(str(path), 0, None, "has no *.yaml flow files"))
            yield from found
        elif path.exists():
            yield path
        else:
            problems.append(FlowProblem(str(path), 0, None, "no such file or folder"))


def _clashes(candidate: LoadedFlow, loaded: Iterable[LoadedFlow]) -> Iterable[FlowProblem]:
    """Two files may not claim one client slug or one phone number: calls must route one way."""
    flow, where = candidate.flow, str(candidate.path)
    for other in loaded:
        if other.flow.client == flow.client:
            message = f"client {flow.client!r} is also claimed by {other.path}"
            yield FlowProblem(where, candidate.line_of(("client",)), None, message)
        for i, number in enumerate(flow.numbers):
            if number in other.flow.numbers:
                message = f"{number} is also claimed by {other.path} ({other.flow.client})"
                yield FlowProblem(where, candidate.line_of(("numbers", i)), None, message)


# --- YAML nodes to plain data, with lines ----------------------------------------------------


def _plain(
    node: yaml.Node,
    path: YamlPath,
    lines: Lines,
    report: Callable[[int, str | None, str], None],
    open_nodes: set[int],
) -> Any:
    """Plain data for a node, recording the line of every key and list item below `path`."""
    if isinstance(node, yaml.ScalarNode):
        return None if node.tag == _NULL_TAG else node.value
    if id(node) in open_nodes:
        report(node.start_mark.line + 1, None, "an alias refers to itself")
        return None
    open_nodes = open_nodes | {id(node)}
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            items.append(_plain(item, (*path, index), lines, report, open_nodes))
        return items
    mapping: dict[str, Any] = {}
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        if key_node.tag == _MERGE_TAG:
            report(line, None, "merge keys (<<) are not supported; write the fields out")
            continue
        if not isinstance(key_node, yaml.ScalarNode):
            report(line, None, "a key must be a plain name")
            continue
        key = key_node.value
        if key in mapping:
            first = lines[(*path, key)]
            step, field_path = _split_step((*path, key))
            if not field_path:  # a step id used twice
                step, field_path = None, (*path, key)
            report(line, step, f"{_label(field_path)} is given twice (first on line {first})")
            continue
        lines[(*path, key)] = line
        mapping[key] = _plain(value_node, (*path, key), lines, report, open_nodes)
    return mapping


def _closest_line(lines: Mapping[YamlPath, int], path: YamlPath) -> int:
    """The line of the deepest part of `path` present in the file (skipping parts that are not)."""
    line = lines.get((), 1)
    found: YamlPath = ()
    for part in path:
        if (*found, part) in lines:
            found = (*found, part)
            line = lines[found]
    return line


def _split_step(path: YamlPath) -> tuple[str | None, YamlPath]:
    """('steps', 'greeting', 'next') -> ('greeting', ('next',)); other paths have no step."""
    if len(path) > 1 and path[0] == "steps" and isinstance(path[1], str):
        return path[1], path[2:]
    return None, path


def _label(path: YamlPath) -> str:
    """('options', 0, 'goto') -> 'options[0].goto'."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text


# --- pydantic errors as messages ---------------------------------------------------------------


def _explain(exc: ValidationError, data: Any) -> list[tuple[YamlPath, str | None, str]]:
    """(path for the line, step id, message) for each pydantic error; of the errors for the
    alternatives of a union (`shift: weekly`, or a number of days) only the first."""
    explained: dict[tuple[YamlPath, str], tuple[str | None, str]] = {}
    for error in exc.errors(include_url=False):
        path, alternative = _data_path(tuple(error["loc"]), data)
        step, field_path = _split_step(path)
        model: type[BaseModel] | None = Flow
        if step is not None:
            step_data = data["steps"][step]
            model = (
                _STEP_MODELS.get(str(step_data.get("type")))
                if isinstance(step_data, dict)
                else None
            )
        message = _message(error, field_path, model if len(field_path) == 1 else None)
        explained.setdefault((path, "" if alternative else message), (step, message))
    return [(path, step, message) for (path, _), (step, message) in explained.items()]


def _data_path(loc: YamlPath, data: Any) -> tuple[YamlPath, bool]:
    """The path in the data a pydantic loc points at, without the union tags pydantic adds
    (the step type in ('steps', 'greet', 'say', 'text'), 'int' in ('rotation', 'shift', 'int')),
    and whether the loc ends in such a tag: the error is about one alternative of a union."""
    path: list[str | int] = []
    alternative = False
    here = data
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if part == "[key]":
            continue
        in_dict = isinstance(here, dict) and part in here
        if in_dict or (isinstance(here, list) and isinstance(part, int) and part < len(here)):
            here = here[part]
        elif isinstance(here, dict) and last:
            here = None  # a missing field: keep its name
        else:
            alternative = last
            continue
        path.append(part)
    return tuple(path), alternative


def _message(error: ErrorDetails, field_path: YamlPath, model: type[BaseModel] | None) -> str:
    """Pydantic's message in a flow author's words; `model` holds the field, when known."""
    kind, text = error["type"], error["msg"]
    label = _label(field_path)
    if kind in ("missing", "extra_forbidden"):
        name, parent = str(field_path[-1]), _label(field_path[:-1])
        where = f"{parent}: " if parent else ""
        if kind == "missing":
            return f"{where}missing required field {name!r}"
        close = get_close_matches(name, list(model.model_fields), n=1) if model else []
        return f"{where}unknown field {name!r}" + (
            f" (did you mean {close[0]!r}?)" if close else ""
        )
    if kind == "union_tag_invalid":
        return f"unknown step type {error['input'].get('type')!r} (use {', '.join(_STEP_MODELS)})"
    if kind == "union_tag_not_found":
        return f"a step needs a 'type': {', '.join(_STEP_MODELS)}"
    if kind == "string_pattern_mismatch" and error.get("ctx", {}).get("pattern") == _NAME_PATTERN:
        text = f"{error['input']!r} should be a lower_case name (letters, digits and _)"
    text = text.removeprefix("Value error, ")
    return f"{label}: {text}" if label else text
