"""Every path paymodel uses, anchored on this file, never on the working directory.

Example:
    >>> (REPO_ROOT / "lib" / "paymodel") == PACKAGE_DIR
    True
"""

from pathlib import Path

__all__ = ["BUILD_DIR", "DATA_DIR", "NOTEBOOKS_DIR", "PACKAGE_DIR", "REPO_ROOT", "SCHEMAS_DIR"]

PACKAGE_DIR = Path(__file__).resolve().parent
"""The ``paymodel`` package itself (``lib/paymodel``)."""

REPO_ROOT = PACKAGE_DIR.parent.parent
"""The checkout root, the parent of ``lib/`` (meaningful for a checkout or an editable install)."""

SCHEMAS_DIR = REPO_ROOT / "schemas"
"""Generated, committed schema artefacts: DDL per engine, Mermaid diagrams and their SVGs."""

NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
"""The paired notebooks (``NN_name.py`` percent scripts beside their ``.ipynb``)."""

DATA_DIR = REPO_ROOT / "data"
"""Input data shipped with the repository; immutable, never written at run time."""

BUILD_DIR = REPO_ROOT / "build"
"""Everything generated at run time (executed notebooks, databases, node_modules); not committed."""
