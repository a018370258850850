"""Rendered diagrams: each ``schemas/NAME.svg`` records the hash of the ``NAME.mmd`` it shows.

``make diagrams`` renders a ``.mmd`` with mermaid-cli and then :func:`stamp_svg` writes the
SHA-256 of the Mermaid source into the SVG, as an XML comment right after the ``<svg>``
tag. Whether an SVG is current is then a fact of the files, not of their modification
times (which a fresh ``git clone`` sets arbitrarily): :func:`stale_diagrams` compares the
recorded hash with the ``.mmd`` as it is, and ``paymodel schemas --check`` fails on any
mismatch.

Command line (used by the Makefile)::

    python -m paymodel.model.diagrams stale schemas     # the .mmd files to (re-)render
    python -m paymodel.model.diagrams stamp x.mmd x.svg # record x.mmd's hash in x.svg

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.mmd").write_text("erDiagram\\n    a ||--o{ b : has\\n")
    >>> _ = (folder / "a.svg").write_text('<svg id="a"><g/></svg>')
    >>> stale_diagrams(folder)
    [('a.mmd', 'a.svg records no source hash; run `make diagrams`')]
    >>> stamp_svg(folder / "a.mmd", folder / "a.svg")
    >>> stale_diagrams(folder)
    []
    >>> _ = (folder / "a.mmd").write_text("erDiagram\\n    a ||--o{ c : has\\n")
    >>> stale_diagrams(folder)[0][1]
    'a.svg was rendered from another version of a.mmd; run `make diagrams`'
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

__all__ = ["recorded_hash", "source_hash", "stale_diagrams", "stamp_svg"]

_MARK = "paymodel-source-sha256"
_STAMP = re.compile(rf"<!-- {_MARK}: ([0-9a-f]{{64}}) [^>]*-->")


def source_hash(mmd: Path) -> str:
    """SHA-256 of a Mermaid file's bytes."""
    return hashlib.sha256(mmd.read_bytes()).hexdigest()


def recorded_hash(svg_text: str) -> str | None:
    """The source hash an SVG records, or ``None``."""
    match = _STAMP.search(svg_text)
    return match.group(1) if match else None


def stamp_svg(mmd: Path, svg: Path) -> None:
    """Record ``mmd``'s hash in ``svg`` (replacing an older record)."""
    text = _STAMP.sub("", svg.read_text(encoding="utf-8"))
    opening = re.search(r"<svg\b[^>]*>", text)
    if opening is None:
        raise ValueError(f"{svg}: no <svg> element")
    stamp = f"<!-- {_MARK}: {source_hash(Path(mmd))} (rendered from {Path(mmd).name}) -->"
    svg.write_text(text[: opening.end()] + stamp + text[opening.end() :], encoding="utf-8")


def stale_diagrams(folder: Path) -> list[tuple[str, str]]:
    """``(mmd name, problem)`` for each ``.mmd`` of ``folder`` whose SVG is missing or stale."""
    problems = []
    for mmd in sorted(Path(folder).glob("*.mmd")):
        svg = mmd.with_suffix(".svg")
        if not svg.exists():
            problems.append((mmd.name, f"{svg.name} is missing; run `make diagrams`"))
            continue
        recorded = recorded_hash(svg.read_text(encoding="utf-8", errors="replace"))
        if recorded is None:
            problems.append((mmd.name, f"{svg.name} records no source hash; run `make diagrams`"))
        elif recorded != source_hash(mmd):
            problems.append(
                (mmd.name, f"{svg.name} was rendered from another version of {mmd.name}; "
                 "run `make diagrams`")
            )  # fmt: skip
    return problems


def _main(argv: list[str]) -> int:
    if argv[:1] == ["stale"] and len(argv) == 2:
        for name, _ in stale_diagrams(Path(argv[1])):
            print(Path(argv[1]) / name)
        return 0
    if argv[:1] == ["stamp"] and len(argv) == 3:
        stamp_svg(Path(argv[1]), Path(argv[2]))
        return 0
    print("usage: python -m paymodel.model.diagrams stale DIR | stamp X.mmd X.svg", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
