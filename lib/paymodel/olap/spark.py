"""A local Spark session for the PySpark engine (Ibis's PySpark backend).

Spark 4.0 runs on Java 17. The session is small on purpose: one local worker thread
per core, two shuffle partitions (the default 200 makes a small build spend its time
scheduling empty tasks), no UI, UTC as the session time zone so timestamps and dates
mean what they mean on DuckDB and PostgreSQL.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["local_session"]


def local_session(*, cores: int = 2, app_name: str = "paymodel-olap") -> Any:
    """Return (creating if needed) a local SparkSession configured for small builds."""
    os.environ.setdefault("PYSPARK_PYTHON", "python3")
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master(f"local[{cores}]")
        .appName(app_name)
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "1g")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
