"""paymodel: a reference architecture for Stripe-style payments data.

One declarative model (:mod:`paymodel.model`) is rendered to DDL, diagrams and docs;
synthetic data (:mod:`paymodel.synthetic`) flows into the OLTP store
(:mod:`paymodel.oltp`) and on to OLAP and documents. Subpackages are imported on
demand so that ``import paymodel`` stays cheap.

Example:
    >>> import paymodel
    >>> paymodel.__version__ != ""
    True
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("paymodel")
except PackageNotFoundError:  # running from a checkout without an install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
