"""China Physiological Signal Challenge 2018: 6-60 s twelve-lead recordings,
500 Hz, one patient each, labelled per recording (``#Dx:`` in the header), not
per beat. ``../shared/data`` holds 75 of them.

Beats are found by the project's QRS detector on lead II. A recording gives
beats of one class when its labels name exactly one of Normal, LBBB and RBBB
and none of AF, PAC and PVC (ST changes and first-degree block do not change
the QRS): in a bundle branch block every beat conducted on time carries the
block, so premature beats are left out; in a Normal recording every beat is
Normal. PAC and PVC recordings are not used: which of their beats are ectopic
is not given.
"""

from __future__ import annotations

from .base import Database

#: Recording label -> class, for recordings that name exactly one of these.
RECORDING_CLASSES = {
    "Normal": "Normal",
    "LBBB": "Left Bundle Branch Block",
    "RBBB": "Right Bundle Branch Block",
}
#: A recording naming any of these gives no beats.
RECORDING_EXCLUDED = ("AF", "PAC", "PVC")

#: Test patients of the new-patient protocol, fixed once (2026-11-26) from the
#: usable recordings of each class in name order: LBBB every second from the
#: second (2 of 4), RBBB and Normal every third from the second (5 of 14, 2 of
#: 7). Chosen on labels alone; no model output was looked at.
TEST_RECORDS = (
    "A0044",
    "A0082",
    "A0010",
    "A0066",
    "A0096",
    "A0116",
    "A0142",
    "A0016",
    "A0038",
)

CPSC2018 = Database(
    name="cpsc2018",
    title="China Physiological Signal Challenge 2018",
    fs=500.0,
    leads=("II",),
    labels="recording",
    test_records=TEST_RECORDS,
    recording_classes=RECORDING_CLASSES,
    recording_excluded=RECORDING_EXCLUDED,
    # The PhysioNet/CinC Challenge 2020 copy, in the format read here.
    physionet="challenge-2020/1.0.2/training/cpsc_2018",
)
