"""The JSON Schema of a flow file, for editors: `nightdesk flows schema` writes it out.

It starts from pydantic's schema of `Flow` and describes the file as authors write it, which
pydantic cannot know: opening windows are text like "08:00-17:30", and times are "09:00" without
the seconds and UTC offset that JSON Schema's `time` and `date-time` formats insist on
(yaml-language-server checks those formats, so it would mark good files as wrong).
"""

from __future__ import annotations

from typing import Any

from app.flows.schema import Flow

_TIME = r"([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?"
_DATE = r"\d{4}-\d{2}-\d{2}"
_PATTERNS = {
    "time": f"^{_TIME}$",
    "date-time": rf"^{_DATE}([T ]{_TIME}(\.\d+)?(Z|[+-]\d{{2}}:\d{{2}})?)?$",
}


def flow_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) that voice flow files are written against."""
    schema = _local_times(Flow.model_json_schema())
    defs = schema["$defs"]
    defs["TimeRange"] = {
        "description": defs["TimeRange"].get("description", ""),
        "anyOf": [
            {
                "type": "string",
                "pattern": r"^\d{2}:\d{2}-\d{2}:\d{2}$",
                "examples": ["08:00-17:30", "22:00-06:00", "00:00-24:00"],
            },
            {k: v for k, v in defs["TimeRange"].items() if k != "description"},
        ],
    }
    schema["properties"]["steps"]["additionalProperties"] = False  # step ids must match the pattern
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
        "title": "Nightdesk voice flow",
    }


def _local_times(node: Any) -> Any:
    """Swap the `time` and `date-time` formats for patterns that accept local wall-clock times."""
    if isinstance(node, list):
        return [_local_times(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _local_times(value) for key, value in node.items()}
    if out.get("format") in _PATTERNS:
        out["pattern"] = _PATTERNS[out.pop("format")]
    return out
