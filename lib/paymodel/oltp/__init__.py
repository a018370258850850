"""The OLTP side: the same schema on DuckDB and PostgreSQL through SQLAlchemy."""
