"""MIT-BIH Arrhythmia Database: 48 half-hour two-lead records, 360 Hz, every
beat labelled by cardiologists (all six classes; ``!`` marks flutter waves)."""

from __future__ import annotations

from .base import Database

#: Paced records, excluded from the record-disjoint protocol (AAMI / de Chazal 2004).
PACED_RECORDS = ("102", "104", "107", "217")

#: de Chazal et al. (2004) record-disjoint split of mitdb.
DS1 = (
    "101",
    "106",
    "108",
    "109",
    "112",
    "114",
    "115",
    "116",
    "118",
    "119",
    "122",
    "124",
    "201",
    "203",
    "205",
    "207",
    "208",
    "209",
    "215",
    "220",
    "223",
    "230",
)
DS2 = (
    "100",
    "103",
    "105",
    "111",
    "113",
    "117",
    "121",
    "123",
    "200",
    "202",
    "210",
    "212",
    "213",
    "214",
    "219",
    "221",
    "222",
    "228",
    "231",
    "232",
    "233",
    "234",
)

MITDB = Database(
    name="mitdb",
    title="MIT-BIH Arrhythmia Database",
    fs=360.0,
    leads=("MLII",),
    labels="beats",
    test_records=DS2,
    train_records=DS1,
    excluded=PACED_RECORDS,
)
