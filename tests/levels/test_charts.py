"""Charts drawn in Python as SVG: nothing from another host, every text escaped, and the
numbers said in words for a screen reader."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from app.levels.charts import bar_chart, nice_ceiling

SVG = "{http://www.w3.org/2000/svg}"


def test_a_chart_is_self_contained_svg_that_says_its_numbers() -> None:
    svg = bar_chart("calls", "Calls <taken>", ["Mon", "Tue & Wed"], [
        ("calls", [4, 0]), ("abandoned", [1, None]),
    ])  # fmt: skip
    root = ET.fromstring(svg)  # noqa: S314 - our own markup: it must parse
    assert root.get("role") == "img"
    assert root.findtext(f"{SVG}title") == "Calls <taken>"
    assert (
        root.findtext(f"{SVG}desc")
        == "Mon: calls 4, abandoned 1; Tue & Wed: calls 0, abandoned none"
    )
    assert len(root.findall(f"{SVG}rect")) == 2 + 2  # two legend keys, two bars (no zero bars)
    assert "href" not in svg
    assert svg.count("http") == 1  # the SVG namespace only


def test_the_axis_tops_out_at_a_round_number() -> None:
    assert [nice_ceiling(v) for v in (0, 0.3, 3, 7, 12, 480)] == [1, 0.5, 5, 10, 20, 500]
