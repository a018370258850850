"""The model: one declarative description of the schema, and its renderings.

Public API:
    * :data:`OLTP`, the transactional model (:mod:`paymodel.model.oltp`);
    * the vocabulary in :mod:`paymodel.model.core` (:class:`Table`, :class:`Column`...);
    * :func:`metadata` and :func:`ddl` (:mod:`paymodel.model.sql`).
"""

from paymodel.model.core import PII, Check, Column, ForeignKey, Model, Table
from paymodel.model.oltp import OLTP
from paymodel.model.sql import ddl, metadata

__all__ = ["OLTP", "PII", "Check", "Column", "ForeignKey", "Model", "Table", "ddl", "metadata"]
