"""Nightdesk's tests; a package so mypy names them `tests.*` and same-named files can coexist."""
