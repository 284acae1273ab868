"""MIT-BIH Supraventricular Arrhythmia Database: half-hour two-channel Holter
records, 128 Hz, beats labelled ``N``, ``S`` (supraventricular premature beats:
this project's PAC class) and ``V``; many patients with frequent PACs and
atrial fibrillation. ``../shared/data`` holds 39 of its 78 records."""

from __future__ import annotations

from .base import Database

#: Test patients of the new-patient protocol, fixed once (2026-11-26) before any
#: model saw them: every third record of the sorted list, from the second. They
#: hold 12 of the 34 patients with 10 or more PACs and 10 of the 29 with 10 or
#: more PVCs (label counts only; no model output was looked at).
TEST_RECORDS = (
    "802",
    "808",
    "821",
    "827",
    "843",
    "849",
    "855",
    "861",
    "867",
    "873",
    "879",
    "885",
    "891",
)

SVDB = Database(
    name="svdb",
    title="MIT-BIH Supraventricular Arrhythmia Database",
    fs=128.0,
    leads=("ECG1",),
    labels="beats",
    test_records=TEST_RECORDS,
    symbols={
        "N": "Normal",
        "S": "Premature Atrial Contraction",
        "V": "Premature Ventricular Contraction",
    },
)
