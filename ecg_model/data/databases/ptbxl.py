"""PTB-XL (Wagner et al. 2020): 21,799 ten-second twelve-lead recordings of
18,869 patients, labelled per recording with SCP-ECG statements by
cardiologists, in ``ptbxl_database.csv`` (``scp_codes``), not per beat and not
in the headers. Hundreds of recordings of each bundle branch block (``CLBBB``,
``CRBBB``): the patients the six classes lack most.

Records are read at 500 Hz (``records500/``; the 100 Hz copies are not read),
lead II. As for cpsc2018, beats are found by the project's QRS detector and a
recording gives beats of one class when its statements name exactly one of
``NORM``, ``CLBBB`` and ``CRBBB`` and no ectopy, pacing, pre-excitation or
atrial fibrillation/flutter (:data:`SCP_EXCLUDED`); premature beats of a block
recording are left out by the on-time rule. Every statement counts, whatever
its likelihood (as in the PTB-XL benchmark).

Its test patients are its own tenth fold (``strat_fold`` 10: patient-disjoint
from folds 1-9, and checked by a cardiologist): fixed by the database, so they
are written in its table rather than in this file. Records of one patient share
``patient_id``, the unit of every interval and grouped split.

``../shared/data`` does not hold it; ``python -m ecg_model download --databases
ptbxl`` fetches the table and the usable 500 Hz records (about 10,000 of them;
the whole database is about 3 GB).
"""

from __future__ import annotations

import ast
import csv
from pathlib import Path

from ...core.errors import EcgError
from .base import Database, RecordEntry

#: The label table, in the database folder.
TABLE = "ptbxl_database.csv"
#: SCP statement -> class, for recordings that name exactly one of these.
SCP_CLASSES = {
    "NORM": "Normal",
    "CLBBB": "Left Bundle Branch Block",
    "CRBBB": "Right Bundle Branch Block",
}
#: A recording naming any of these gives no beats: which beats are ectopic is
#: not given (PAC, PVC, PRC(S), BIGU, TRIGU, SVARR), there are no conducted
#: sinus beats to label (AFIB, AFLT, SVTAC, PSVT, PACE), or the QRS is widened
#: by pre-excitation, not by a block (WPW).
SCP_EXCLUDED = (
    "PAC",
    "PVC",
    "PRC(S)",
    "BIGU",
    "TRIGU",
    "SVARR",
    "AFIB",
    "AFLT",
    "SVTAC",
    "PSVT",
    "PACE",
    "WPW",
)
#: ``strat_fold`` of the test patients (the database's recommended test fold).
TEST_FOLD = 10


def ptbxl_codes(scp_codes: str) -> tuple[str, ...]:
    """The statements of a ``scp_codes`` cell (``"{'NORM': 100.0, 'SR': 0.0}"``),
    sorted; empty when the cell is empty or not such a mapping."""
    try:
        codes = ast.literal_eval(scp_codes) if scp_codes.strip() else {}
    except (ValueError, SyntaxError):
        return ()
    return tuple(sorted(str(k) for k in codes)) if isinstance(codes, dict) else ()


def ptbxl_index(db_dir: Path) -> list[RecordEntry]:
    """Every recording in PTB-XL's table: its 500 Hz record, fold split,
    patient and statements.

    Raises
    ------
    EcgError
        When the table is missing or lacks a column this reads.
    """
    table = Path(db_dir) / TABLE
    try:
        with open(table, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        raise EcgError(
            f"{table}: PTB-XL's label table is missing (fetch it with "
            "`python -m ecg_model download --databases ptbxl`)"
        ) from None
    need = {"ecg_id", "patient_id", "scp_codes", "strat_fold", "filename_hr"}
    missing = need - set(rows[0] if rows else need)
    if missing or not rows:
        raise EcgError(f"{table}: no rows, or missing columns {sorted(missing)}")
    out = []
    for line, r in enumerate(rows, start=2):
        path = (r["filename_hr"] or "").strip()
        # patient_id is written as a float ("15709.0").
        patient = (r["patient_id"] or "").strip().removesuffix(".0")
        try:
            fold = int(float(r["strat_fold"]))
        except (TypeError, ValueError):
            fold = 0
        if not path or not patient or not 1 <= fold <= 10:
            raise EcgError(
                f"{table}, line {line}: a record needs filename_hr, patient_id "
                f"and a strat_fold of 1-10 (got {path!r}, {patient!r}, "
                f"{r['strat_fold']!r})"
            )
        out.append(
            RecordEntry(
                name=Path(path).name,
                path=path,
                split="test" if fold == TEST_FOLD else "train",
                patient=patient,
                labels=ptbxl_codes(r["scp_codes"]),
            )
        )
    return out


def ptbxl_fetch(source: str, dl_dir: Path) -> None:
    """Fetch PTB-XL's tables, then the 500 Hz records a build can use (those
    whose statements name one class and nothing excluded), into ``dl_dir``."""
    import wfdb  # only a download needs it here

    dl_dir = Path(dl_dir)
    wfdb.dl_files(source, str(dl_dir), [TABLE, "scp_statements.csv"])
    files = []
    for e in ptbxl_index(dl_dir):
        if PTBXL.recording_class(e.labels or ())[0]:
            files += [f"{e.path}.hea", f"{e.path}.dat"]
    wfdb.dl_files(source, str(dl_dir), files)


PTBXL = Database(
    name="ptbxl",
    title="PTB-XL, a large publicly available electrocardiography dataset",
    fs=500.0,
    leads=("II",),
    labels="recording",
    recording_classes=SCP_CLASSES,
    recording_excluded=SCP_EXCLUDED,
    physionet="ptb-xl",
    index=ptbxl_index,
    fetch=ptbxl_fetch,
)
