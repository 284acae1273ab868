"""St Petersburg INCART 12-lead Arrhythmia Database: 75 half-hour twelve-lead
records, 257 Hz, every beat labelled with PhysioNet's beat codes (as in mitdb:
N, L, A, V, R). The records come from 32 Holter recordings of 32 patients
(patients with coronary artery disease, conduction abnormalities and
arrhythmias, three of them with a bundle branch block).

It trains only: several records share a patient, and which ones is said in the
headers of the records, not in their names, so a split by record would not be a
split by patient. ``../shared/data`` does not hold it; fetch it with
``python -m ecg_model download --databases incartdb`` and build with
``--databases ... incartdb``. Its test figures come from leaving it out
(``lodo``), which holds out every record of it.
"""

from __future__ import annotations

from .base import Database

INCARTDB = Database(
    name="incartdb",
    title="St Petersburg INCART 12-lead Arrhythmia Database",
    fs=257.0,
    # Lead II is the limb lead closest to mitdb's MLII.
    leads=("II",),
    labels="beats",
    test_records=(),
)
