"""The notebooks are tests: their pairs are in sync, and each one runs under papermill.

(a) Pair check, without running ``jupytext --sync`` (it picks the source by modification
time and can overwrite an edited ``.py`` in a fresh checkout): the cells of ``NN_x.py``
read by jupytext equal those of ``NN_x.ipynb`` (type, source, tags), and the committed
``.ipynb`` holds no outputs.

(b) Execution: each notebook runs in a temporary folder with a fresh PostgreSQL database,
through :func:`paymodel.notebooks.execute_notebook`, the code path of ``make run``.
"""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import pytest

from paymodel.notebook_checks import next_notebook, output_problems, source_problems
from paymodel.notebooks import declared_parameters, execute_notebook, list_notebooks, run_all

NOTEBOOKS = list_notebooks()


def _execution_case(py: Path):
    """A notebook as a test case, marked ``postgres`` when it declares ``pg_dsn``."""
    marks = [pytest.mark.postgres] if "pg_dsn" in declared_parameters(py) else []
    return pytest.param(py, id=py.name, marks=marks)


def _cells(notebook: nbformat.NotebookNode) -> list[tuple[str, str, list[str]]]:
    return [
        (cell.cell_type, cell.source, list(cell.metadata.get("tags", [])))
        for cell in notebook.cells
    ]


def test_notebooks_01_to_03_exist() -> None:
    assert {"01", "02", "03"} <= {path.name[:2] for path in list_notebooks()}


@pytest.mark.parametrize("py", NOTEBOOKS, ids=lambda path: path.name)
def test_pair_in_sync(py: Path) -> None:
    ipynb = py.with_suffix(".ipynb")
    assert ipynb.exists(), f"{py.name}: paired {ipynb.name} is missing (jupytext --to ipynb {py})"
    assert _cells(nbformat.read(ipynb, as_version=4)) == _cells(jupytext.read(py)), (
        f"{py.name} and {ipynb.name} differ: edit the .py, then `jupytext --to ipynb {py.name}`"
    )


@pytest.mark.parametrize("py", NOTEBOOKS, ids=lambda path: path.name)
def test_committed_ipynb_has_no_outputs(py: Path) -> None:
    ipynb = nbformat.read(py.with_suffix(".ipynb"), as_version=4)
    dirty = [
        index
        for index, cell in enumerate(ipynb.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, f"{py.with_suffix('.ipynb').name}: cells {dirty} hold outputs"


@pytest.mark.parametrize("py", NOTEBOOKS, ids=lambda path: path.name)
def test_has_parameters_cell(py: Path) -> None:
    tagged = [c for c in jupytext.read(py).cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f'{py.name}: needs one cell tagged "parameters", found {len(tagged)}'


@pytest.mark.parametrize("py", NOTEBOOKS, ids=lambda path: path.name)
def test_source_links_onward_and_names_nothing_readers_lack(py: Path) -> None:
    """The last cell links to the next notebook present; no link to a missing one."""
    assert source_problems(py) == []


def test_next_notebook_follows_the_files_present(tmp_path: Path) -> None:
    for name in ("01_a.py", "02_b.py", "05_e.py"):
        (tmp_path / name).write_text("")
    notebooks = list_notebooks(tmp_path)
    assert next_notebook(tmp_path / "02_b.py", notebooks) == tmp_path / "05_e.py"
    assert next_notebook(tmp_path / "05_e.py", notebooks) is None


def test_source_problems_catch_a_stale_closing_link(tmp_path: Path) -> None:
    import jupytext

    text = (NOTEBOOKS[0].read_text().rsplit("# %% [markdown]", 1)[0]
            + "# %% [markdown]\n# Next: [99 · Later](99_later.ipynb), see DOMAIN.md\n")  # fmt: skip
    (tmp_path / "01_x.py").write_text(text)
    (tmp_path / "02_y.py").write_text(jupytext.writes(jupytext.reads("# %%\n1\n", "py:percent"),
                                                      "py:percent"))  # fmt: skip
    problems = source_problems(tmp_path / "01_x.py")
    assert any("99_later.ipynb, which does not exist" in p for p in problems)
    assert any("names DOMAIN.md" in p for p in problems)
    assert any("does not link to the next notebook, 02_y.ipynb" in p for p in problems)


def test_run_all_gives_each_notebook_its_own_output_folder(tmp_path: Path) -> None:
    import jupytext

    for name in ("01_a.py", "02_b.py"):
        notebook = jupytext.reads(
            '# %% tags=["parameters"]\nout_dir = "x"\n# %%\n'
            "from pathlib import Path\nPath(out_dir).mkdir(parents=True, exist_ok=True)\n"
            '(Path(out_dir) / "here").write_text(out_dir)\n',
            "py:percent",
        )
        notebook.metadata["kernelspec"] = {"name": "python3", "language": "python",
                                           "display_name": "Python 3"}  # fmt: skip
        jupytext.write(notebook, tmp_path / name)
    out = tmp_path / "build"
    run_all(out, notebooks=list_notebooks(tmp_path))
    assert (out / "01" / "here").read_text() == str(out / "01")
    assert (out / "02" / "here").exists()
    assert (out / "01_a.ipynb").exists()


@pytest.mark.notebook
@pytest.mark.parametrize("py", [_execution_case(py) for py in NOTEBOOKS])
def test_notebook_executes(py: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    declared = declared_parameters(py)
    parameters = {"out_dir": str(tmp_path)}
    if "pg_dsn" in declared:
        # Requested only when needed, so that notebooks without PostgreSQL start no server.
        parameters["pg_dsn"] = request.getfixturevalue("pg_dsn")
    parameters = {name: value for name, value in parameters.items() if name in declared}
    out = execute_notebook(py, tmp_path / f"{py.stem}.ipynb", parameters, cwd=tmp_path)
    # What a reader sees: whole values, NULL for a NULL, no bare tuple.
    assert output_problems(nbformat.read(out, as_version=4)) == []
