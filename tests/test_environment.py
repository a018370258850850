"""environment.yml mirrors pyproject.toml, and the pins that matter (README: Versions that matter) are in place.

conda cannot reach its channels on the development machines, so environment.yml cannot be
solved here: this test is what keeps it honest.
"""

from __future__ import annotations

import tomllib

import pytest
import yaml

# packaging is a dependency of pytest itself, so it is always importable here.
from packaging.requirements import Requirement

from paymodel.paths import REPO_ROOT


@pytest.fixture(scope="module")
def project() -> dict:
    with (REPO_ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)["project"]


@pytest.fixture(scope="module")
def environment() -> dict:
    with (REPO_ROOT / "environment.yml").open() as f:
        return yaml.safe_load(f)


def _pip_section(environment: dict) -> list[str]:
    sections = [dep["pip"] for dep in environment["dependencies"] if isinstance(dep, dict)]
    assert len(sections) == 1, "environment.yml needs exactly one pip: section"
    return sections[0]


def _normalized(requirements: list[str]) -> list[str]:
    return sorted(str(Requirement(r)) for r in requirements)


def test_environment_pins_python_311(environment: dict) -> None:
    assert environment["name"] == "paymodel"
    assert environment["channels"] == ["conda-forge"]
    conda = [dep for dep in environment["dependencies"] if isinstance(dep, str)]
    assert "python=3.11" in conda
    assert "pip" in conda


def test_environment_lists_every_pyproject_requirement(project: dict, environment: dict) -> None:
    pip = _pip_section(environment)
    assert "-e ." in pip, "environment.yml must install the project itself (-e .)"
    expected = list(project["dependencies"])
    for group in project["optional-dependencies"].values():
        expected += group
    listed = [r for r in pip if r != "-e ."]
    assert _normalized(listed) == _normalized(expected), (
        "environment.yml's pip: list must equal pyproject's dependencies plus every extra"
    )
    assert sorted(listed) == sorted(expected), "copy the requirement strings verbatim"


@pytest.mark.parametrize(
    ("package", "specifier"),
    [
        # duckdb 2.x drops fetch_arrow_table/fetch_record_batch that ibis 12.0.0 calls.
        ("duckdb", "<2"),
        # sqlglot >= 30.18 renamed an argument of Drop: ibis emits a bare DROP TABLE IF EXISTS.
        ("sqlglot", "<30.18"),
        ("ibis-framework", "==12.0.0"),
    ],
)
def test_critical_pins(project: dict, package: str, specifier: str) -> None:
    requirements = {Requirement(r).name: Requirement(r) for r in project["dependencies"]}
    assert package in requirements, f"pyproject.toml: {package} missing from dependencies"
    assert specifier in {str(s) for s in requirements[package].specifier}, (
        f"pyproject.toml: {package} must keep the pin {specifier} (see the README's Versions that matter)"
    )
