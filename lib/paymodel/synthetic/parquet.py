"""Frames (dicts of numpy arrays) -> Arrow tables typed from the model -> Parquet files.

The Arrow schema of a table comes from :data:`paymodel.model.oltp.OLTP`, so a Parquet
file has exactly the columns, types and nullability of its OLTP table. Writer
settings are fixed (no creation timestamp in the metadata, one compression codec,
rows sorted by key), so the same data gives byte-identical files.

Example:
    >>> import numpy as np
    >>> t = to_arrow("fx_rates", {"rate_date": np.array([19723]),
    ...     "currency": np.array(["eur"], dtype=object), "usd_per_unit": np.array([10_900_000_000])})
    >>> t.schema.field("usd_per_unit").type, str(t.column("usd_per_unit")[0])
    (Decimal128Type(decimal128(20, 10)), '1.0900000000')
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from paymodel.model.core import LogicalType, Table
from paymodel.model.oltp import OLTP
from paymodel.safe_write import make_dir, open_for_writing
from paymodel.synthetic.primitives import NA

__all__ = ["arrow_schema", "arrow_type", "to_arrow", "write_parquet"]


def arrow_type(t: LogicalType) -> pa.DataType:
    """The Arrow type that holds a logical type exactly."""
    return {
        "text": pa.string(),
        "bigint": pa.int64(),
        "integer": pa.int32(),
        "smallint": pa.int16(),
        "boolean": pa.bool_(),
        "timestamptz": pa.timestamp("us", tz="UTC"),
        "date": pa.date32(),
        "json": pa.string(),
        "decimal": pa.decimal128(t.precision or 20, t.scale or 10),
    }[t.sql]


def arrow_schema(table: Table) -> pa.Schema:
    """Arrow schema of an OLTP table (JSON columns as JSON text)."""
    return pa.schema(
        [pa.field(c.name, arrow_type(c.type), nullable=c.nullable) for c in table.columns]
    )


def _decimal(values: np.ndarray, mask: np.ndarray, typ: pa.Decimal128Type) -> pa.Array:
    """Decimal array from integers already scaled by 10^scale (two's complement, 128 bits)."""
    v = np.where(mask, 0, values).astype(np.int64)
    words = np.empty((len(v), 2), dtype=np.int64)
    words[:, 0] = v
    words[:, 1] = np.where(v < 0, -1, 0)
    validity = pa.array(~mask).buffers()[1] if mask.any() else None
    return pa.Array.from_buffers(typ, len(v), [validity, pa.py_buffer(words.tobytes())], null_count=int(mask.sum()))


def _column(values: np.ndarray, typ: pa.DataType) -> pa.Array:
    if pa.types.is_string(typ):
        return pa.array(values, type=pa.string())
    if pa.types.is_boolean(typ):
        return pa.array(np.asarray(values, dtype=bool))
    v = np.asarray(values, dtype=np.int64)
    mask = v == NA
    if pa.types.is_decimal(typ):
        return _decimal(v, mask, typ)
    if pa.types.is_timestamp(typ):
        return pa.array(np.where(mask, 0, v) * 1_000_000, type=pa.int64(), mask=mask).cast(typ)
    if pa.types.is_date32(typ):
        return pa.array(np.where(mask, 0, v).astype(np.int32), type=pa.int32(), mask=mask).cast(typ)
    return pa.array(np.where(mask, 0, v), mask=mask if mask.any() else None).cast(typ)


def to_arrow(table_name: str, frame: dict[str, np.ndarray], *, sort: bool = True) -> pa.Table:
    """An Arrow table of ``table_name``'s schema from a frame, sorted by primary key."""
    table = OLTP.table(table_name)
    schema = arrow_schema(table)
    arrays = [_column(frame[f.name], f.type) for f in schema]
    out = pa.Table.from_arrays(arrays, schema=schema)
    if sort and out.num_rows:
        out = out.sort_by([(k, "ascending") for k in table.primary_key])
    return out


def write_parquet(table: pa.Table, path: Path) -> None:
    """Write with fixed settings: zstd, no statistics drift, no creation metadata.

    Never through a symbolic link (:mod:`paymodel.safe_write`).
    """
    make_dir(path.parent)
    with open_for_writing(path) as f:
        _write(table, f)


def _write(table: pa.Table, f: object) -> None:
    pq.write_table(
        table.replace_schema_metadata(None),
        f,
        compression="zstd",
        compression_level=3,
        use_dictionary=True,
        write_statistics=True,
        row_group_size=1_000_000,
        store_schema=False,
    )
