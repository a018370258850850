"""What a reader trips over in a notebook, as checks that tests run on every notebook.

:func:`source_problems` reads a notebook's percent script: it must close with a link to
the next notebook that exists (derived from the files present, so a notebook added later
changes what "next" is), link to no notebook that does not exist, name no file readers do
not have, and draw no diagram as a Mermaid code fence (raw text outside JupyterLab).

:func:`output_problems` reads an executed copy: no table shows ``NaN``, ``None`` or
``<NA>`` for a NULL, no value is cut with ``...``, no cell ends on a bare tuple, a cell
that shows a diagram shows it as an SVG image, and no cell failed.

Example:
    >>> from paymodel.notebooks import list_notebooks
    >>> first, second = list_notebooks()[:2]
    >>> next_notebook(first) == second
    True
    >>> source_problems(first)
    []
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

__all__ = ["next_notebook", "output_problems", "source_problems"]

_LINK = re.compile(r"\]\((?:\./)?([0-9]{2}_[A-Za-z0-9_]+\.ipynb)\)")
# A Markdown file or a path out of the notebooks' folder that a cell names: it must be in
# the repository, or the reader is sent to notes only the authors have.
_NAMED_FILE = re.compile(r"(?<![\w/.-])((?:\.\./)+[\w./-]*|[\w./-]*[\w-]\.md)\b")
_NULLS = re.compile(r"(?<![\w'\"])(NaN|None|<NA>|NaT)(?![\w'\"])")
_CUT = re.compile(r"\w\.\.\.(\s|$)|\s\.\.\.\s")


def next_notebook(path: Path, notebooks: list[Path] | None = None) -> Path | None:
    """The notebook after ``path`` in reading order among those present, or ``None``."""
    from paymodel.notebooks import list_notebooks

    present = list_notebooks(path.parent) if notebooks is None else notebooks
    later = [nb for nb in present if nb.name > path.name]
    return later[0] if later else None


def _in_repository(name: str, folder: Path) -> bool:
    """Whether ``name`` is a file or folder of the repository, from ``folder`` or its root."""
    from paymodel.paths import REPO_ROOT

    root = REPO_ROOT.resolve()
    for base in (folder, REPO_ROOT, REPO_ROOT / "schemas"):
        candidate = (base / name).resolve()
        if candidate.is_relative_to(root) and candidate.exists():
            return True
    return False


def source_problems(path: Path, notebooks: list[Path] | None = None) -> list[str]:
    """Problems of a notebook's source (its ``.py``), one sentence each."""
    import jupytext

    cells = jupytext.read(path).cells
    problems = []
    present = {nb.with_suffix(".ipynb").name for nb in
               (notebooks if notebooks is not None else _present(path))}  # fmt: skip
    for index, cell in enumerate(cells):
        for target in _LINK.findall(cell.source):
            if target not in present:
                problems.append(
                    f"{path.name} cell {index}: links to {target}, which does not exist"
                )
        for name in sorted(set(_NAMED_FILE.findall(cell.source))):
            if not _in_repository(name, path.parent):
                problems.append(f"{path.name} cell {index}: names {name}, not in this repository")
        if "```mermaid" in cell.source:
            problems.append(
                f"{path.name} cell {index}: a Mermaid code fence shows as raw text outside "
                "JupyterLab; show the SVG of schemas/ with paymodel.display.diagram"
            )
    last = cells[-1]
    following = next_notebook(path, notebooks)
    if last.cell_type != "markdown":
        problems.append(f"{path.name}: the last cell is code; end on the summary")
    elif following is not None:
        link = following.with_suffix(".ipynb").name
        if f"]({link})" not in last.source:
            problems.append(
                f"{path.name}: the last cell does not link to the next notebook, {link}"
            )
    elif _LINK.search(last.source) and path.with_suffix(".ipynb").name not in last.source:
        problems.append(f"{path.name}: the last notebook links onward")
    return problems


def _present(path: Path) -> list[Path]:
    from paymodel.notebooks import list_notebooks

    return list_notebooks(path.parent)


def _texts(output: dict[str, Any]) -> list[str]:
    data = output.get("data", {})
    return [data[kind] for kind in ("text/plain", "text/markdown") if kind in data]


def output_problems(notebook: Any) -> list[str]:
    """Problems of an executed notebook's outputs (an ``nbformat`` notebook), one each."""
    problems = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        shown = {kind for output in cell.get("outputs", []) for kind in output.get("data", {})}
        if "diagram(" in cell.source and "image/svg+xml" not in shown:
            problems.append(f"cell {index}: shows no SVG image of its diagram")
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                problems.append(f"cell {index}: {output.get('ename')}: {output.get('evalue')}")
                continue
            for text in _texts(output):
                text = "".join(text) if isinstance(text, list) else text
                if output.get("output_type") in ("execute_result", "display_data"):
                    if match := _NULLS.search(text):
                        problems.append(f"cell {index}: shows {match.group(1)} for a NULL")
                    if _CUT.search(text):
                        problems.append(f"cell {index}: a value is cut with '...'")
                if output.get("output_type") == "execute_result" and re.fullmatch(
                    r"\(.*\)", text.strip(), flags=re.S
                ):
                    problems.append(f"cell {index}: ends on a bare tuple {text.strip()[:40]}")
    return problems
