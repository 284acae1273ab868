"""The databases the project reads, one adapter module each (see ``base``).

``DATABASES`` lists them in build order; a dataset build reads those it is
asked for (``BuildOptions.databases``) whose folder is present.
"""

from __future__ import annotations

from .base import LABELS, Database
from .cpsc2018 import CPSC2018
from .cudb import CUDB
from .incartdb import INCARTDB
from .mitdb import MITDB
from .svdb import SVDB
from .vfdb import VFDB

DATABASES: dict[str, Database] = {
    db.name: db for db in (MITDB, VFDB, SVDB, CUDB, CPSC2018, INCARTDB)
}
#: What a build reads unless told otherwise: the original report's databases,
#: so the published random-split figures stay reproducible.
DEFAULT_DATABASES = ("mitdb", "vfdb")
#: The new-patient protocol's databases: those with test patients (incartdb
#: trains only).
PROTOCOL_DATABASES = tuple(n for n, db in DATABASES.items() if db.test_records)

__all__ = [
    "CPSC2018",
    "CUDB",
    "DATABASES",
    "DEFAULT_DATABASES",
    "INCARTDB",
    "LABELS",
    "MITDB",
    "PROTOCOL_DATABASES",
    "SVDB",
    "VFDB",
    "Database",
]
