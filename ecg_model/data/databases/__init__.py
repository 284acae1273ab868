"""The databases the project reads, one adapter module each (see ``base``).

``DATABASES`` lists them in build order; a dataset build reads every one whose
folder is present under the data folder.
"""

from __future__ import annotations

from .base import LABELS, Database
from .mitdb import MITDB
from .vfdb import VFDB

DATABASES: dict[str, Database] = {db.name: db for db in (MITDB, VFDB)}

__all__ = ["DATABASES", "LABELS", "MITDB", "VFDB", "Database"]
