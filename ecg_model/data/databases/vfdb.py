"""MIT-BIH Malignant Ventricular Ectopy Database: 22 half-hour two-lead records,
250 Hz, rhythm annotations (``(VF``, ``(VFL``, ...) that mark flutter and
fibrillation episodes."""

from __future__ import annotations

from .base import Database

#: Records with VF episodes held out for testing in the patient protocol
#: (4 of the 8 patients with VF; the other 4 train, beside mitdb record 207).
TEST_RECORDS = ("419", "424", "429", "609")

VFDB = Database(
    name="vfdb",
    title="MIT-BIH Malignant Ventricular Ectopy Database",
    fs=250.0,
    leads=(),
    labels="vf_episodes",
    test_records=TEST_RECORDS,
)
