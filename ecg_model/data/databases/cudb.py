"""Creighton University Ventricular Tachyarrhythmia Database: single-channel
records of about 8.5 min, 250 Hz, from patients with ventricular tachycardia,
flutter and fibrillation; an episode runs from a ``[`` to the next ``]``.
Beats outside are not typed, so only the episodes are used.
``../shared/data`` holds 18 of its 35 records."""

from __future__ import annotations

from .base import Database

#: Test patients of the new-patient protocol, fixed once (2026-11-26): every
#: third record of the sorted list, from the second (all hold VF episodes).
TEST_RECORDS = ("cu03", "cu09", "cu15", "cu21", "cu27", "cu33")

CUDB = Database(
    name="cudb",
    title="Creighton University Ventricular Tachyarrhythmia Database",
    fs=250.0,
    leads=(),
    labels="vf_brackets",
    test_records=TEST_RECORDS,
)
