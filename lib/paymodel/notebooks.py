"""Execute the paired notebooks under papermill: one code path for ``make run`` and the tests.

Notebooks are ``notebooks/NN_name.py`` percent scripts (the reviewed source) paired with a
``.ipynb`` committed without outputs. papermill cannot read a ``.py``, so each one is read
with jupytext and handed to papermill as a notebook object, with the kernel named
explicitly. Only parameters that the notebook's ``parameters`` cell assigns are passed.

Parameters are written into each executed notebook (the injected cell and its metadata),
so a password never travels as one: a PostgreSQL DSN parameter is passed without its
password, which reaches the kernel as ``PGPASSWORD`` in its environment (libpq reads it).
Each kernel listens on IPC sockets in a private folder of its own (mode 0700), so
concurrent runs never collide and no other local user can connect to a kernel.
"""

from __future__ import annotations

import ast
import contextlib
import os
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from paymodel.paths import NOTEBOOKS_DIR

__all__ = [
    "NOTEBOOK_GLOB",
    "declared_parameters",
    "execute_notebook",
    "list_notebooks",
    "parameters_cell_source",
    "run_all",
]

NOTEBOOK_GLOB = "[0-9][0-9]_*.py"
"""Notebooks are the percent scripts whose name starts with a two-digit reading order."""

PARAMETERS_TAG = "parameters"


def list_notebooks(directory: str | os.PathLike[str] = NOTEBOOKS_DIR) -> list[Path]:
    """Return the notebooks (``NN_*.py``) of ``directory`` in reading order."""
    return sorted(Path(directory).glob(NOTEBOOK_GLOB))


def parameters_cell_source(path: str | os.PathLike[str]) -> str | None:
    """Return the source of the cell tagged ``parameters``, or ``None`` if there is none."""
    import jupytext

    for cell in jupytext.read(path).cells:
        if PARAMETERS_TAG in cell.metadata.get("tags", []):
            return cell.source
    return None


def declared_parameters(path: str | os.PathLike[str]) -> set[str]:
    """Return the names the notebook's ``parameters`` cell assigns (empty without one)."""
    source = parameters_cell_source(path)
    return set() if source is None else _assigned_names(source)


def _assigned_names(source: str) -> set[str]:
    """Return the names a cell assigns at top level, the way papermill sees parameters.

    Example:
        >>> sorted(_assigned_names('scale = 0.1\\nout_dir: str = "build"  # comment\\nprint(1)'))
        ['out_dir', 'scale']
    """
    names: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        else:
            continue
        names.update(target.id for target in targets if isinstance(target, ast.Name))
    return names


def _local_kernel_manager(socket_dir: str | os.PathLike[str]) -> type:
    """A kernel manager talking to the kernel over local IPC sockets rather than TCP.

    The kernel runs on this machine only; IPC also spares every run ipykernel's warning
    about unencrypted TCP. The sockets are ``socket_dir/kernel-N``: jupyter_client's
    default, ``kernel-ipc-N`` in the kernel's working directory, is shared by every run
    in the same folder.
    """
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class LocalKernelManager(AsyncKernelManager):
        transport = "ipc"

        @default("ip")
        def _private_ip(self) -> str:
            return str(Path(socket_dir) / "kernel")

    return LocalKernelManager


def execute_notebook(
    path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    parameters: Mapping[str, Any],
    cwd: str | os.PathLike[str],
) -> Path:
    """Execute one percent-script notebook under papermill and write the executed copy.

    Args:
        path: The ``NN_name.py`` notebook.
        out_path: Where the executed ``.ipynb`` goes (its folder is created).
        parameters: Values injected after the ``parameters`` cell; every key must be a
            parameter the notebook declares.
        cwd: Working directory of the kernel.

    Returns:
        ``out_path``.

    Raises:
        ValueError: A parameter is not declared by the notebook.
        papermill.PapermillExecutionError: A cell failed; the executed copy, up to the
            failing cell, is still written to ``out_path``.
    """
    import jupytext
    import papermill

    path, out_path = Path(path), Path(out_path)
    unknown = set(parameters) - declared_parameters(path)
    if unknown:
        raise ValueError(
            f"{path.name}: parameters {sorted(unknown)} are not declared in its parameters cell"
        )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if out_path.is_symlink():
        raise ValueError(f"{out_path}: a symbolic link; refusing to write the notebook through it")
    with tempfile.TemporaryDirectory(prefix="paymodel-kernel-") as sockets:  # mode 0700
        papermill.execute_notebook(
            jupytext.read(path),
            str(out_path),
            parameters=dict(parameters),
            kernel_name="python3",
            language="python",
            cwd=str(cwd),
            progress_bar=False,
            kernel_manager_class=_local_kernel_manager(sockets),
        )
    return out_path


@contextlib.contextmanager
def _passwords_to_environment(values: dict[str, Any]) -> Any:
    """Take the passwords out of DSN parameters; ``PGPASSWORD`` holds it meanwhile.

    Raises:
        ValueError: two parameters hold different passwords (one variable holds one).
    """
    from paymodel.oltp.engines import split_password

    passwords = set()
    for key, value in values.items():
        if isinstance(value, str):
            values[key], password = split_password(value)
            if password is not None:
                passwords.add(password)
    if len(passwords) > 1:
        raise ValueError("parameters hold DSNs with different passwords: pass one at a time")
    if not passwords:
        yield
        return
    saved = os.environ.get("PGPASSWORD")
    os.environ["PGPASSWORD"] = passwords.pop()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PGPASSWORD", None)
        else:
            os.environ["PGPASSWORD"] = saved


def run_all(
    out_dir: str | os.PathLike[str],
    parameters: Mapping[str, Any] | None = None,
    notebooks: Iterable[str | os.PathLike[str]] | None = None,
) -> list[Path]:
    """Execute every notebook in reading order into ``out_dir``, printing a line for each.

    Each notebook receives, of ``parameters`` plus the defaults below, only what its
    ``parameters`` cell declares. The defaults: ``out_dir`` is the notebook's own folder
    ``out_dir/NN`` (NN its two-digit prefix), unless ``parameters`` names one; ``pg_dsn``, if
    a notebook declares it and it is not given, is a fresh database on
    :func:`~paymodel.oltp.engines.temporary_postgres` (an embedded server unless
    ``PAYMODEL_PG_DSN`` is set), shared by all notebooks of the run and dropped at the end.
    A DSN's password is passed as ``PGPASSWORD`` in the kernels' environment, never as a
    parameter (see the module docstring).

    Args:
        out_dir: Folder for the executed ``.ipynb`` copies, and the kernels' working directory.
        parameters: Parameter values for the notebooks that declare them.
        notebooks: The notebooks to run, in order; by default :func:`list_notebooks`.

    Returns:
        The executed notebooks' paths.
    """
    from paymodel.oltp.engines import (
        drop_postgres_database,
        dsn_database,
        fresh_postgres_database,
        temporary_postgres,
    )

    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [Path(nb) for nb in (list_notebooks() if notebooks is None else notebooks)]
    if not paths:
        print(f"no notebooks ({NOTEBOOK_GLOB}) under {NOTEBOOKS_DIR}: nothing to run", flush=True)
    declared = {nb: declared_parameters(nb) for nb in paths}
    values = {"out_dir": str(out_dir), **(parameters or {})}
    executed = []
    with contextlib.ExitStack() as stack:
        if "pg_dsn" not in values and any("pg_dsn" in names for names in declared.values()):
            started = time.perf_counter()
            server_dsn = stack.enter_context(temporary_postgres())
            values["pg_dsn"] = fresh_postgres_database(server_dsn)
            stack.callback(drop_postgres_database, server_dsn, dsn_database(values["pg_dsn"]))
            print(f"PostgreSQL database ready in {time.perf_counter() - started:.1f} s", flush=True)
        stack.enter_context(_passwords_to_environment(values))
        for nb in paths:
            out_path = out_dir / f"{nb.stem}.ipynb"
            started = time.perf_counter()
            # Each notebook writes into a folder of its own, out_dir/NN (notebooks/README.md).
            own = {**values, "out_dir": str(out_dir / nb.name[:2])} if "out_dir" not in (
                parameters or {}
            ) else values  # fmt: skip
            try:
                execute_notebook(
                    nb, out_path, {k: v for k, v in own.items() if k in declared[nb]}, out_dir
                )
            except Exception:
                print(
                    f"{nb.name}: FAILED after {time.perf_counter() - started:.1f} s, see {out_path}",
                    flush=True,
                )
                raise
            print(f"{nb.name}: {time.perf_counter() - started:.1f} s -> {out_path}", flush=True)
            executed.append(out_path)
    return executed
