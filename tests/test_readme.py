"""The README tells the truth: its Python examples run, and the commands it names exist."""

from __future__ import annotations

import re

import pytest

from paymodel.cli import _parser
from paymodel.paths import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)


def test_readme_has_python_examples():
    assert len(PYTHON_BLOCKS) >= 2


@pytest.mark.parametrize("source", PYTHON_BLOCKS, ids=lambda s: s.splitlines()[0][:40])
def test_python_example_runs(source, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(source, "README.md", "exec"), {"__name__": "readme"})
    if "AmountExceeded" in source:
        assert "refund of 5000 exceeds the 1500 left to refund" in capsys.readouterr().out


def test_every_paymodel_subcommand_in_the_readme_exists():
    named = set(re.findall(r"^paymodel (\w+)", README, flags=re.MULTILINE))
    parser = _parser()
    commands = set(parser._subparsers._group_actions[0].choices)
    assert named, "the README names no subcommand"
    assert named <= commands


def test_every_make_target_in_the_readme_exists():
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z]+):", makefile, flags=re.MULTILINE))
    named = set(re.findall(r"`make (\w+)", README))
    assert named <= targets, named - targets
