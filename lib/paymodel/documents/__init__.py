"""The document layer: collections in TinyDB (embedded, crash-safe) or PostgreSQL JSONB.

Public API:
    * :func:`open_store` (a folder of TinyDB files, or a ``postgresql://`` URL), its
      collections' :class:`~paymodel.documents.store.DocumentCollection` interface;
    * :func:`build_documents`, what ``paymodel documents`` runs;
    * :func:`validate` and :class:`InvalidDocuments`;
    * customer profiles' versions: :func:`read_profile`, :func:`migrate_profile`,
      :func:`migrate_profiles`, :func:`profile_v1`;
    * :func:`erase_customer` (GDPR erasure in every collection);
    * :class:`StoreLockedError`, raised to a second writer.

The collections themselves are declared in :mod:`paymodel.model.documents`.
"""

from paymodel.documents.build import build_documents
from paymodel.documents.erasure import erase_customer
from paymodel.documents.profiles import migrate_profile, migrate_profiles, profile_v1, read_profile
from paymodel.documents.storage import StoreLockedError
from paymodel.documents.store import open_store
from paymodel.documents.validation import InvalidDocuments, validate

__all__ = [
    "InvalidDocuments",
    "StoreLockedError",
    "build_documents",
    "erase_customer",
    "migrate_profile",
    "migrate_profiles",
    "open_store",
    "profile_v1",
    "read_profile",
    "validate",
]
