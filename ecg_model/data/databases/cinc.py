"""cinc-samples: 134 twelve-lead recordings of the PhysioNet/CinC Challenges
2020/2021 from five sources (Georgia ``E``, PTB-XL ``HR``, Chapman/Ningbo
``JS``, CPSC-extra ``Q``, PTB ``S``), 500 or 1000 Hz, labelled per recording
with SNOMED CT codes (``#Dx:``). None is in ``cpsc2018/`` or any other folder.

Beats are found by the project's QRS detector on lead II, as for cpsc2018. A
recording gives beats of one class when (:func:`cinc_class`):

- it names a complete left (164909002, 733534002) or right (59118001,
  713427006) bundle branch block, not both: its beats conducted on time are
  that block (other findings, such as ST changes or an axis, do not change it;
  an incomplete block, 713426002, is not a complete one);
- or it names nothing but a sinus rhythm (sinus rhythm 426783006, bradycardia
  426177001, tachycardia 427084000, arrhythmia 427393009): Normal;
- and no atrial fibrillation or flutter, premature beat or pacing (which of
  its beats are ectopic is not given).

The ``S`` records (PTB) carry no patient id and several come from one person:
they are left out, so no person can straddle the split.
"""

from __future__ import annotations

from .base import Database, fetch_by_hand

LBBB_CODES = frozenset({"164909002", "733534002"})
RBBB_CODES = frozenset({"59118001", "713427006"})
#: Sinus rhythms: a recording naming only these is Normal.
SINUS_CODES = frozenset({"426783006", "426177001", "427084000", "427393009"})
#: AF, flutter, PAC (two codes), PVC (two codes), pacing: no beats.
EXCLUDED_CODES = frozenset(
    {"164889003", "164890007", "284470004", "63593006", "427172004", "17338001"}
    | {"10370003"}
)
RECORDING_CLASSES = {
    "Normal": "Normal",
    "LBBB": "Left Bundle Branch Block",
    "RBBB": "Right Bundle Branch Block",
}
#: Test patients of the new-patient protocol, fixed once (2026-12-02) from the
#: usable recordings of each class in name order, on labels alone: RBBB every
#: second from the second (2 of 5), Normal every third from the second (10 of
#: 29); the one LBBB recording trains.
TEST_RECORDS = (
    "E07510",
    "Q0077",
    "E00002",
    "E07506",
    "E07513",
    "E07518",
    "HR00005",
    "HR00010",
    "HR06005",
    "HR06008",
    "JS00006",
    "JS00010",
)
#: PTB records: no patient id (left out; see the module's text).
PTB_RECORDS = tuple(f"S{i:04d}" for i in range(1, 11))


def cinc_class(labels: tuple[str, ...] | set[str]) -> tuple[str, str]:
    """``(label, "")`` of :data:`RECORDING_CLASSES` for a recording's SNOMED
    codes, or ``("", reason)`` when it gives no beats (see the module)."""
    dx = {str(d).strip() for d in labels if str(d).strip()}
    if dx & EXCLUDED_CODES:
        return "", "recording with AF, flutter, premature beats or pacing"
    left, right = dx & LBBB_CODES, dx & RBBB_CODES
    if left and right:
        return "", "recording LBBB+RBBB"
    if left or right:
        return ("LBBB" if left else "RBBB"), ""
    if dx and dx <= SINUS_CODES:
        return "Normal", ""
    return "", "recording with other findings than a sinus rhythm"


#: cinc-samples is a collection, not one PhysioNet database.
cinc_fetch = fetch_by_hand(
    "cinc-samples is a collection of the Challenges' sample recordings (.hea "
    "and .mat), not one PhysioNet database"
)


CINC = Database(
    name="cinc-samples",
    title="PhysioNet/CinC Challenge 2020/2021 samples",
    fs=500.0,
    leads=("II",),
    labels="recording",
    test_records=TEST_RECORDS,
    excluded=PTB_RECORDS,
    recording_classes=RECORDING_CLASSES,
    recording_rule=cinc_class,
    fetch=cinc_fetch,
)
