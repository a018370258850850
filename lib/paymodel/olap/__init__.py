"""The warehouse layer: a Kimball star schema built with Ibis from the OLTP tables and their events.

Public API:
    * :func:`build_warehouse` and :func:`update_warehouse` (``paymodel olap``);
    * :data:`STEPS`, :class:`Step` and :func:`register`: the ordered registry of builders;
    * :mod:`paymodel.olap.transforms`: the pure Ibis transforms, among them
      :func:`to_reporting_currency`;
    * :func:`pseudonymise` and :func:`resolve_pii_key`: keyed hashing of direct identifiers;
    * :func:`mart_expressions`: the marts (:mod:`paymodel.olap.marts`), whose steps this
      package registers after the star's, and the metrics in :mod:`paymodel.olap.metrics`.
"""

from paymodel.olap.build import (
    STEPS,
    BuildReport,
    Step,
    build_warehouse,
    register,
    update_warehouse,
)
from paymodel.olap.marts import mart_expressions, register_marts
from paymodel.olap.pii import MissingPIIKeyError, PIIKey, pseudonymise, resolve_pii_key
from paymodel.olap.transforms import BuildParams, to_reporting_currency

register_marts()

__all__ = [
    "STEPS",
    "BuildParams",
    "BuildReport",
    "MissingPIIKeyError",
    "PIIKey",
    "Step",
    "build_warehouse",
    "mart_expressions",
    "pseudonymise",
    "register",
    "resolve_pii_key",
    "to_reporting_currency",
    "update_warehouse",
]
