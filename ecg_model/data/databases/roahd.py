"""roahd: one registered beat each of 50 LBBB, 50 RBBB and 150 healthy
subjects, eight leads (V1-V6, I, II), 1 kHz, from the R package ``roahd``
(``mfD_LBBB.rda``, ``mfD_RBBB.rda``, ``mfD_healthy.rda``); none of these
people is in any other database here.

A subject is a record of one beat (``LBBB-07``: the group's row 7). The beat
has no neighbours, so it enters the 2.4 s picture alone, with blank paper
around it, as a tight crop is drawn (``Record.valid``); no RR interval is
invented for it. Lead II (the eighth array; the package's documentation names
seven leads for eight arrays, and plotted, arrays 6 and 7 look like I and II)
is read first; amplitudes are microvolts. The beats were time-warped onto a
common grid and smoothed: what that did to QRS duration is measured, not
assumed, before a model leans on it.

Cite: Ieva F, Paganoni AM, Pigoli D, Vitelli V. Multivariate functional
clustering for the morphological analysis of electrocardiograph curves. J R
Stat Soc C 62(3) (2013); the ``roahd`` R package (Tarabelloni N et al.).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from ...core.errors import EcgError
from ..signals import Record
from .base import Database, RecordEntry, fetch_by_hand

#: Group (file ``mfD_<group>.rda``) -> its beats' code (PhysioNet's).
GROUPS = {"LBBB": "L", "RBBB": "R", "healthy": "N"}
#: Subjects a group holds (the files' rows).
GROUP_SIZES = {"LBBB": 50, "RBBB": 50, "healthy": 150}
#: The eight arrays' leads, in the files' order.
LEAD_NAMES = ("V1", "V2", "V3", "V4", "V5", "V6", "I", "II")
FS = 1000.0
#: Test patients of the new-patient protocol, fixed once (2026-12-02) on
#: labels alone: every fifth subject of each group from the third (rows 2, 7,
#: ..., 47 of LBBB and RBBB: 10 each; of healthy: 30).
TEST_RECORDS = tuple(
    f"{g}-{i:02d}" for g, n in GROUP_SIZES.items() for i in range(2, n, 5)
)
#: Seconds of blank paper each side of the beat: more than a window's half.
PAD_S = 1.3


@functools.lru_cache(maxsize=3)
def _group_read(rda: Path, stamp: float) -> np.ndarray:
    """A group file's beats, mV, shape ``(8, n_subjects, 1024)``."""
    import warnings

    import rdata

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # R classes rdata has no constructor for
            obj = rdata.conversion.convert(rdata.parser.parse_file(rda))
        fd = obj[rda.stem]["fDList"]
        x = np.stack([np.asarray(f["values"], np.float64) for f in fd])
    except Exception as e:
        raise EcgError(f"{rda}: cannot read roahd beats ({e})") from None
    if x.ndim != 3 or x.shape[0] != len(LEAD_NAMES):
        raise EcgError(f"{rda}: expected 8 leads of beats, found shape {x.shape}")
    return x / 1000.0  # microvolts -> mV


def _group_of(rda: Path) -> np.ndarray:
    return _group_read(rda, rda.stat().st_mtime)


def roahd_index(db_dir: Path) -> list[RecordEntry]:
    """Every subject of the group files present; a row identical to an
    earlier one (one pair among the healthy) is left out."""
    out = []
    for g in GROUPS:
        rda = Path(db_dir) / f"mfD_{g}.rda"
        if not rda.exists():
            continue
        x = _group_of(rda)
        seen = set()
        for i in range(x.shape[1]):
            key = x[:, i].tobytes()
            name = f"{g}-{i:02d}"
            split = "" if key in seen else ("test" if name in TEST_RECORDS else "train")
            seen.add(key)
            out.append(RecordEntry(name, f"mfD_{g}/{i:02d}", split, name))
    return out


def roahd_exists(path: Path) -> bool:
    """Whether the group file of subject ``path`` (``.../mfD_<g>/<row>``) is there."""
    return Path(path).parent.with_suffix(".rda").exists()


def roahd_read(path: Path, fs: float, all_leads: bool = False):
    """Subject ``path`` (``<db_dir>/mfD_<group>/<row>``) as a one-beat record.

    Returns a :class:`~ecg_model.data.signals.Record`: lead II resampled to
    ``fs`` Hz, padded with its end values by :data:`PAD_S` each side (marked
    outside ``valid``, drawn as blank paper), one annotation at the R peak.
    """
    path = Path(path)
    group = path.parent.name.removeprefix("mfD_")
    if group not in GROUPS or not path.name.isdigit():
        raise EcgError(f"{path}: not a roahd subject (mfD_<group>/<row>)")
    x = _group_of(path.parent.with_suffix(".rda"))
    row = int(path.name)
    if row >= x.shape[1]:
        raise EcgError(f"{path}: group {group} has {x.shape[1]} subjects")
    # Rate: 1 kHz -> fs by a polyphase filter (up/down in whole numbers of Hz).
    up, down = int(round(fs)), int(FS)
    leads = {n: resample_poly(x[k, row], up, down) for k, n in enumerate(LEAD_NAMES)}
    sig = leads["II"]
    # The R peak: lead II's largest excursion from its median (near 0.4 s).
    r = int(np.argmax(np.abs(sig - np.median(sig))))
    pad = int(round(PAD_S * fs))

    def padded(s: np.ndarray) -> np.ndarray:
        return np.pad(s, pad, mode="edge")

    return Record(
        name=path.parent.name.removeprefix("mfD_") + f"-{row:02d}",
        database="roahd",
        sig=padded(sig),
        fs=float(fs),
        lead="II",
        ann_sample=np.array([pad + r]),
        ann_symbol=[GROUPS[group]],
        ann_aux=[""],
        others={n: padded(s) for n, s in leads.items() if n != "II"}
        if all_leads
        else {},
        valid=(pad, pad + sig.size),
    )


#: roahd is not on PhysioNet: its beats come with the R package.
roahd_fetch = fetch_by_hand(
    "roahd is not on PhysioNet: its files mfD_LBBB.rda, mfD_RBBB.rda and "
    "mfD_healthy.rda come with the R package roahd (its data/ folder)"
)


ROAHD = Database(
    name="roahd",
    title="roahd registered beats (Ieva et al. 2013)",
    fs=FS,
    leads=("II",),
    labels="beats",
    test_records=TEST_RECORDS,
    index=roahd_index,
    fetch=roahd_fetch,
    read=roahd_read,
    exists=roahd_exists,
)
