"""The databases the project reads, one adapter module each (see ``base``).

``DATABASES`` lists them in build order; a dataset build reads those it is
asked for (``BuildOptions.databases``) whose folder is present.
"""

from __future__ import annotations

from .base import LABELS, Database, RecordEntry
from .cinc import CINC
from .cpsc2018 import CPSC2018
from .cudb import CUDB
from .incartdb import INCARTDB
from .mitdb import MITDB
from .ptbxl import PTBXL
from .roahd import ROAHD
from .svdb import SVDB
from .vfdb import VFDB

DATABASES: dict[str, Database] = {
    db.name: db
    for db in (MITDB, VFDB, SVDB, CUDB, CPSC2018, INCARTDB, PTBXL, ROAHD, CINC)
}
#: What a build reads unless told otherwise: the original report's databases,
#: so the published random-split figures stay reproducible.
DEFAULT_DATABASES = ("mitdb", "vfdb")
#: The new-patient protocol's databases: those in ``../shared/data``, whose test
#: patients are written in the adapters and the split file. incartdb (trains
#: only) and ptbxl (its own test fold) are fetched extras.
PROTOCOL_DATABASES = ("mitdb", "vfdb", "svdb", "cudb", "cpsc2018")

__all__ = [
    "CINC",
    "CPSC2018",
    "CUDB",
    "DATABASES",
    "DEFAULT_DATABASES",
    "INCARTDB",
    "LABELS",
    "MITDB",
    "PROTOCOL_DATABASES",
    "PTBXL",
    "ROAHD",
    "SVDB",
    "VFDB",
    "Database",
    "RecordEntry",
]
