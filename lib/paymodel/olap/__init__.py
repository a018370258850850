"""The warehouse layer: a Kimball star schema built with Ibis from the OLTP tables and their events.

Public API:
    * :func:`build_warehouse` and :func:`update_warehouse` (``paymodel olap``);
    * :data:`STEPS`, :class:`Step` and :func:`register`: the ordered registry of builders;
    * :mod:`paymodel.olap.transforms`: the pure Ibis transforms, among them
      :func:`to_reporting_currency`;
    * :func:`pseudonymise` and :func:`resolve_pii_key`: keyed hashing of direct identifiers.
"""

from paymodel.olap.build import (
    STEPS,
    BuildReport,
    Step,
    build_warehouse,
    register,
    update_warehouse,
)
from paymodel.olap.pii import MissingPIIKeyError, PIIKey, pseudonymise, resolve_pii_key
from paymodel.olap.transforms import BuildParams, to_reporting_currency

__all__ = [
    "STEPS",
    "BuildParams",
    "BuildReport",
    "MissingPIIKeyError",
    "PIIKey",
    "Step",
    "build_warehouse",
    "pseudonymise",
    "register",
    "resolve_pii_key",
    "to_reporting_currency",
    "update_warehouse",
]
