"""How notebooks show things: whole values, NULL as NULL, diagrams as images, checked plots.

Notebooks call these so that every one of them shows results the same way:

* :func:`configure` lets pandas print whole rules and errors (no ``...`` mid-word);
* :func:`nulls` shows a missing value as ``NULL``, the word SQL uses, never ``NaN`` or
  ``None``;
* :func:`diagram` shows a rendered SVG of ``schemas/`` as an image, with its Mermaid source
  a click away, after checking that the SVG shows the current ``.mmd``;
* :func:`check_plot` asserts what every plot needs: a title, both axis labels, and bars
  that sit on their tick labels (pandas 3 draws a datetime bar axis at datetime positions,
  so ticks set at 0..n-1 pile up away from the bars).

Example:
    >>> import pandas as pd
    >>> nulls(pd.DataFrame({"a": [1, None], "b": ["x", None]})).to_dict("list")
    {'a': [1.0, 'NULL'], 'b': ['x', 'NULL']}
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pandas as pd

from paymodel.paths import SCHEMAS_DIR

__all__ = ["check_plot", "configure", "diagram", "nulls"]

NULL = "NULL"


def configure() -> None:
    """pandas display options for notebooks: whole cell values, every column, wide lines."""
    pd.set_option(
        "display.max_colwidth", None, "display.max_columns", None, "display.width", 250,
        "display.max_rows", 120,
    )  # fmt: skip


def nulls(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` for display, with every missing value shown as ``NULL``."""
    shown = frame.astype(object)
    return shown.where(frame.notna(), NULL)


class Diagram:
    """A rendered diagram of ``schemas/``, shown as an SVG image (``image/svg+xml``).

    Frontends show an SVG output as an image, styles included (an SVG inside an HTML
    output would lose its ``<style>`` to the sanitiser of an untrusted notebook).
    """

    def __init__(self, name: str, folder: Path = SCHEMAS_DIR) -> None:
        from paymodel.model.diagrams import stale_diagrams

        self.mmd, self.svg = folder / f"{name}.mmd", folder / f"{name}.svg"
        problems = [p for mmd, p in stale_diagrams(folder) if mmd == self.mmd.name]
        if problems:
            raise AssertionError(f"schemas/{self.svg.name}: {problems[0]}")
        self.source = self.mmd.read_text(encoding="utf-8")

    def __repr__(self) -> str:
        return f"diagram schemas/{self.svg.name}"

    def _repr_svg_(self) -> str:
        text = self.svg.read_text(encoding="utf-8")
        # Scale to the notebook's width: drop the fixed size, keep the viewBox.
        opening = re.search(r"<svg\b[^>]*>", text)
        assert opening is not None, self.svg
        tag = re.sub(r'\s(width|height)="[^"]*"', "", opening.group(0))
        tag = tag.replace("<svg", '<svg width="100%"', 1)
        return text[: opening.start()] + tag + text[opening.end() :]


class MermaidSource:
    """The Mermaid text of a diagram, folded under a click (``<details>``)."""

    def __init__(self, diagram: Diagram) -> None:
        self.name, self.source = diagram.mmd.name, diagram.source

    def _repr_html_(self) -> str:
        return (
            f"<details><summary>Mermaid source: <code>schemas/{self.name}</code> "
            f"(drawn by <code>make diagrams</code>)</summary><pre>{html.escape(self.source)}"
            "</pre></details>"
        )

    def __repr__(self) -> str:
        return f"Mermaid source: schemas/{self.name}"


def diagram(name: str) -> None:
    """Show ``schemas/NAME.svg`` and, folded, its Mermaid source; fail if the SVG is stale."""
    from IPython.display import display

    shown = Diagram(name)
    display(shown, MermaidSource(shown))


def check_plot(ax: Any) -> Any:
    """Assert that a matplotlib axes is readable; return it.

    A title and both axis labels are set; for a bar chart, every bar sits on a tick and
    there are as many tick labels as bars.
    """
    assert ax.get_title(), "the plot has no title"
    assert ax.get_xlabel(), f"{ax.get_title()}: no x-axis label"
    assert ax.get_ylabel(), f"{ax.get_title()}: no y-axis label"
    for container in ax.containers:
        horizontal = getattr(container, "orientation", "vertical") == "horizontal"
        centres = sorted(
            (b.get_y() + b.get_height() / 2) if horizontal else (b.get_x() + b.get_width() / 2)
            for b in container
        )
        ticks = sorted(ax.get_yticks() if horizontal else ax.get_xticks())
        lo, hi = sorted(ax.get_ylim() if horizontal else ax.get_xlim())  # inverted axes too
        assert all(lo <= c <= hi for c in centres), f"{ax.get_title()}: bars outside the axis"
        assert len(ticks) == len(centres), (
            f"{ax.get_title()}: {len(centres)} bars but {len(ticks)} ticks"
        )
        assert all(abs(t - c) < 1e-6 for t, c in zip(ticks, centres, strict=True)), (
            f"{ax.get_title()}: the bars do not sit on their ticks"
        )
    return ax
