"""Build beat-image datasets from the recordings, and load any dataset folder.

Layout (the original report's): ``train/<Class Name>/*.png`` and
``test/<Class Name>/*.png``, plus ``manifest.csv`` (one row per image),
``build_report.json`` (counts, skipped beats, timing) and ``dataset.json`` (the
drawing contract and build options). ``cache.npz`` holds the same images as
arrays so training does not decode 100,000 PNGs each run.

The pipeline reads: records -> beats and VF windows -> split -> cap/balance
-> render -> write (into a temporary folder renamed into place at the end).
"""

from __future__ import annotations

import fcntl
import functools
import os
import shutil
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.model_selection import train_test_split

from ..core.classes import CLASSES, VF_CLASS, class_from_name
from ..core.errors import EcgError
from ..core.io import atomic_write_json, data_dir, json_read
from .databases import (
    DATABASES,
    DEFAULT_DATABASES,
    PROTOCOL_DATABASES,
    Database,
    RecordEntry,
)
from .packed import Packed
from .pictures import image_read
from .render import (
    RenderSpec,
    image_normalize,
    outside_blank,
    thumbs_render,
    windows_render,
)
from .signals import (
    beats_extract,
    dx_labels,
    episodes_bracketed,
    noise_make,
    qrs_detect,
    record_names,
    record_read,
    vf_windows,
)

SPLITS = ("random", "patient")
#: Manifest column naming the lead of an ``extra_leads`` picture; empty for the
#: record's first lead (and absent from older manifests: all first lead).
EXTRA_LEAD = "extra_lead"
#: The ``extra_lead`` of a picture drawn with synthetic noise added
#: (``BuildOptions.noise``): the first lead plus ``signals.noise_make``.
NOISE_LEAD = "noise"
#: Leave-one-database-out: ``lodo-<db>`` tests on every patient of ``db`` and
#: trains on the others' (``ecg_model.training.lodo`` makes such datasets as
#: views of a patient-split build).
LODO_SPLITS = tuple(f"lodo-{db}" for db in DATABASES)
#: Train on every patient of a dataset, test part included (the published
#: default serves new patients, so none is held back); its test figures are on
#: seen patients and say nothing of new ones.
ALL_SPLIT = "all"

MANIFEST_COLUMNS = (
    "path",
    "database",
    "record",
    "sample",
    "time_s",
    "symbol",
    "class",
    "split",
)
#: Manifest column naming the patient a row's record comes from, where a
#: database has several records a patient (PTB-XL); absent or empty: the record.
PATIENT = "patient"

ProgressFn = Callable[[float, str], None]


@dataclass(frozen=True)
class BuildOptions:
    """Options of a dataset build (saved in ``dataset.json``).

    Attributes
    ----------
    split : str
        ``"random"`` (70:30 by beat, stratified) or ``"patient"`` (record-disjoint:
        mitdb DS1/DS2, vfdb by record, paced records excluded).
    test_size : float
        Test share for the random split.
    caps : dict
        Class name -> most images kept in the training part (test is never capped).
    min_per_class : int
        Rare classes in the training part are topped up to this many images by
        redrawing their beats with the window shifted by a few samples (0: off).
    vf_stride_s : float
        Spacing of VF windows inside vfdb episodes, seconds.
    records : tuple of str
        Restrict to these record names (e.g. ``("mitdb/100", "vfdb/418")``); empty: all.
    databases : tuple of str
        The databases read (``data.databases``); default mitdb and vfdb, the
        original report's.
    seed : int
        Seed of the random split, caps and top-up.
    extra_leads : bool
        Also draw every other lead of each training record at the same beats
        (patient and leave-one-database-out splits; the test part keeps the
        first lead of each database's preference). A bundle branch block is a
        property of the patient, not of the lead: the other leads are more
        views of the few patients who have one, and users upload any lead.
    noise : float
        Share of each training record's beats (VF windows apart) also drawn
        with recording noise added (``signals.noise_make``: electrode motion,
        0.5-5 Hz, at -6 to 12 dB), as pictures of their own class
        (``extra_lead`` ``noise``). Noisy stretches of Normal beats are what a
        model without them calls VF.
        Patient and leave-one-database-out splits only; 0: off.
    """

    split: str = "random"
    test_size: float = 0.3
    caps: dict = field(default_factory=dict)
    min_per_class: int = 0
    vf_stride_s: float = 1.0
    records: tuple = ()
    seed: int = 0
    databases: tuple = DEFAULT_DATABASES
    extra_leads: bool = False
    noise: float = 0.0

    def __post_init__(self) -> None:
        if self.extra_leads and self.split == "random":
            raise EcgError(
                "extra leads need the patient split or a lodo-<db> split (a split "
                "by patient): on a random split a beat's other lead could train "
                "while the beat tests"
            )
        if not 0 <= self.noise <= 1:
            raise EcgError(f"noise must be a share between 0 and 1, not {self.noise}")
        if self.noise and self.split == "random":
            raise EcgError(
                "noisy copies need the patient split or a lodo-<db> split (a split "
                "by patient): on a random split a beat's noisy copy could train "
                "while the beat tests"
            )


def _png_name(db: str, rn: str, sample: int, shift: int = 0, lead: str = "") -> str:
    tag = "".join(ch for ch in str(lead) if ch.isalnum())
    return (
        f"{db}_{rn}_{sample}{'' if shift == 0 else f'_s{shift:+d}'}"
        f"{f'_{tag}' if tag else ''}.png"
    )


def _images_stage(folder: Path, names: list[str], imgs: np.ndarray) -> np.ndarray:
    """Write uint8 images ``(n, h, w)`` as grayscale PNGs named ``names``.

    Returns their ink (the renderer draws pure black on white) packed 1 bit a
    pixel, ``(n, h, ceil(w / 8))``.
    """
    for name, im in zip(names, imgs):
        Image.fromarray(im).save(folder / name, compress_level=1)
    return np.packbits(imgs == 0, axis=-1)


def _record_items(args: tuple) -> tuple[pd.DataFrame, np.ndarray, Counter]:
    """Worker: one record -> (metadata rows, packed images, skipped counts).

    The images are written as PNGs into the staging folder ``stage`` here, in
    the worker, so encoding runs on every core; what comes back is 1 bit a pixel
    (``np.packbits`` of the ink, ``(n, h, ceil(w / 8))``).
    """
    path, db, spec, stride, extra, noise, seed, entry, stage = args
    adapter = DATABASES[db]
    rec = record_of(path, db, spec.fs, all_leads=extra)
    # Beats are found and labelled on the first lead; other leads, where asked
    # for, are drawn at the same beats, and so is a share of them with noise.
    centres, symbols, labels, skipped = record_labelled(
        rec, adapter, spec, stride, entry.labels
    )
    every = np.arange(centres.size)
    views = [("", rec.sig, every)]
    views += [(lead, sig, every) for lead, sig in rec.others.items() if centres.size]
    if noise and centres.size:
        key = f"{db}/{rec.name}"
        pick = np.random.default_rng([seed, zlib.crc32(key.encode())]).random(
            centres.size
        )
        # VF windows get no noisy copy: the copies are there to show beats under
        # noise as their own class, and noisy VF would teach noise as VF (with
        # them, the development set's VF precision fell from 98.7% to 91.8%).
        # Bundle branch blocks keep theirs: leaving them out (look 19) did not
        # bring RBBB back.
        not_vf = np.asarray(labels, dtype=object) != VF_CLASS
        noisy = rec.sig + noise_make(rec.sig, spec.fs, key, seed)
        views.append((NOISE_LEAD, noisy, np.flatnonzero((pick < noise) & not_vf)))
    metas, bits = [], []
    for lead, sig, which in views:
        c = centres[which]
        metas.append(
            pd.DataFrame(
                {
                    "database": db,
                    "record": rec.name,
                    "sample": c,
                    "time_s": np.round(c / spec.fs, 3),
                    "symbol": np.asarray(symbols, dtype=object)[which],
                    "class": np.asarray(labels, dtype=object)[which],
                    EXTRA_LEAD: lead,
                    PATIENT: entry.patient,
                }
            )
        )
        images = (
            (
                thumbs_render(
                    sig,
                    c,
                    spec,
                    np.random.default_rng(
                        [seed, zlib.crc32(f"{db}/{rec.name}/{lead}".encode())]
                    ),
                )
                if spec.view == "thumbnail"
                else windows_render(sig, c, spec)
            )
            if c.size
            else np.zeros((0, spec.image_height, spec.image_width), np.uint8)
        )
        if rec.valid is not None and c.size:
            # A lone beat's padding is no signal: blank paper, as a crop is drawn.
            a, b = rec.valid
            images = outside_blank(images, c - a, b - a, spec)
        names = [_png_name(db, rec.name, n, lead=lead) for n in c]
        bits.append(_images_stage(Path(stage), names, images))
    return pd.concat(metas, ignore_index=True), np.concatenate(bits), skipped


def record_of(path: str | os.PathLike, db: str, fs: float, all_leads: bool = False):
    """Record ``path`` of database ``db`` read as its adapter says (lead
    preference, annotations or not), resampled to ``fs`` Hz; a database without
    an adapter is read as mitdb is (MLII, annotated)."""
    adapter = DATABASES.get(db)
    if adapter is not None and adapter.read is not None:
        return adapter.read(Path(path), fs, all_leads)
    return record_read(
        path,
        fs=fs,
        database=db,
        leads=adapter.leads if adapter else ("MLII",),
        annotated=adapter.annotated if adapter else True,
        all_leads=all_leads,
    )


@functools.lru_cache(maxsize=8)
def _table_read(
    db: str, db_dir: Path, stamp: float
) -> tuple[tuple[RecordEntry, ...], dict[str, str]]:
    # A table of 21,799 rows (PTB-XL) is read once per folder and state.
    entries = tuple(DATABASES[db].index(db_dir))
    return entries, {e.name: e.path for e in entries}


def _table(adapter: Database, db_dir: Path) -> tuple[tuple, dict[str, str]]:
    """A tabled database's (records, record name -> path), cached until a file
    of its folder changes."""
    stamp = max((p.stat().st_mtime for p in db_dir.iterdir() if p.is_file()), default=0)
    return _table_read(adapter.name, db_dir, stamp)


def database_records(adapter: Database, db_dir: str | os.PathLike) -> list[RecordEntry]:
    """A database's records as a build reads them: from its own table where it
    has one (``Database.index``), else those listed in ``RECORDS`` (or the
    ``.hea`` files), each its own patient, split by the adapter's lists."""
    db_dir = Path(db_dir)
    if adapter.index is not None:
        return list(_table(adapter, db_dir)[0])
    return [
        RecordEntry(n, n, adapter.patient_split(n), n) for n in record_names(db_dir)
    ]


def record_path(root: str | os.PathLike, db: str, rn: str) -> Path:
    """Path (without extension) of record ``rn`` of database ``db`` in the data
    folder ``root``: ``root/db/rn``, or where the database's table puts it."""
    root = Path(root)
    adapter = DATABASES.get(db)
    if adapter is None or adapter.index is None or not (root / db).is_dir():
        return root / db / rn
    return root / db / _table(adapter, root / db)[1].get(rn, rn)


def record_labelled(
    rec,
    adapter: Database,
    spec: RenderSpec,
    stride_s: float = 1.0,
    labels: tuple[str, ...] | None = None,
) -> tuple[np.ndarray, list[str], list[str], Counter]:
    """A record's labelled window centres, as its database labels them.

    Returns centres (samples at ``spec.fs``, shape ``(n,)``), their symbols and
    classes, and the beats skipped by reason. Beat databases give their beats;
    episode databases a VF window every ``stride_s`` seconds inside episodes;
    recording databases their on-time beats, by the recording's ``labels``
    (from the database's table, :class:`RecordEntry`; None: the header's
    ``#Dx:``).
    """
    if adapter.labels == "beats":
        b = beats_extract(rec, spec.before, spec.after, adapter.symbols)
        if rec.name not in adapter.wide_qrs_records:
            return b.sample, b.symbol, b.label, b.skipped
        ok = np.asarray(b.label, dtype=object) != "Normal"
        skipped = b.skipped + Counter({"N with wide QRS": int((~ok).sum())})
        keep = np.flatnonzero(ok)
        return (
            b.sample[keep],
            [b.symbol[i] for i in keep],
            [b.label[i] for i in keep],
            +skipped,
        )
    if adapter.labels == "recording":
        return _recording_beats(rec, adapter, spec, labels)
    episodes = episodes_bracketed(rec) if adapter.labels == "vf_brackets" else None
    stride = int(round(stride_s * spec.fs))
    centres = vf_windows(rec, spec.before, spec.after, stride, episodes)
    n = centres.size
    return centres, ["(VF"] * n, [VF_CLASS] * n, Counter()


#: A beat of a labelled recording counts as conducted on time when the interval
#: before it is at least this share of the recording's median interval.
ON_TIME = 0.85


def _recording_beats(
    rec, adapter: Database, spec: RenderSpec, labels: tuple[str, ...] | None
) -> tuple[np.ndarray, list[str], list[str], Counter]:
    """Beats of a recording labelled as a whole (cpsc2018, PTB-XL): the QRS
    detector's beats conducted on time, all of the recording's class; none when
    its labels name no single class or an excluded one (counted by reason)."""
    if labels is None:
        labels = dx_labels(rec.comments)
    named, why = adapter.recording_class(labels)
    if not named:
        return np.zeros(0, np.int64), [], [], Counter({why: 1})
    cls = adapter.recording_classes[named]
    qrs = qrs_detect(rec.sig, spec.fs)  # (n,) samples
    inside = (qrs - spec.before >= 0) & (qrs + spec.after <= rec.sig.size)
    rr = np.diff(qrs)  # rr[i - 1] precedes beat i
    on_time = np.zeros(qrs.size, bool)
    if rr.size:
        on_time[1:] = rr >= ON_TIME * np.median(rr)
    keep = inside & on_time
    skipped = Counter(
        {
            "edge": int((~inside).sum()),
            "premature or first": int((inside & ~on_time).sum()),
        }
    )
    k = int(keep.sum())
    return qrs[keep], [named] * k, [cls] * k, +skipped


def _split_assign(
    meta: pd.DataFrame,
    opts: BuildOptions,
    splits: dict[tuple[str, str], str] | None = None,
) -> np.ndarray:
    """``"train"``, ``"test"`` or ``""`` (excluded) for each row; ``splits``:
    (database, record) -> the patient protocol's split, as ``database_records``
    gives it (needed for a database with a table; else the adapter's lists)."""
    if opts.split == "random":
        idx = np.arange(len(meta))
        strat = meta["class"].to_numpy()
        # Stratify only when every class has at least 2 members.
        counts = Counter(strat)
        tr, te = train_test_split(
            idx,
            test_size=opts.test_size,
            random_state=opts.seed,
            stratify=strat if min(counts.values()) >= 2 else None,
        )
        out = np.empty(len(meta), dtype=object)
        out[tr], out[te] = "train", "test"
        return out
    if opts.split == "patient":
        # Each database's adapter (or its table) names its test patients.
        return np.array(
            [
                (splits or {}).get((db, rec)) or DATABASES[db].patient_split(rec)
                for db, rec in zip(meta["database"], meta["record"])
            ],
            dtype=object,
        )
    if opts.split in LODO_SPLITS:
        held = opts.split.removeprefix("lodo-")
        return np.array(
            [
                ""
                if rec in DATABASES[db].excluded
                else "test"
                if db == held
                else "train"
                for db, rec in zip(meta["database"], meta["record"])
            ],
            dtype=object,
        )
    raise EcgError(
        f"unknown split {opts.split!r}; expected one of: "
        f"{', '.join(SPLITS + LODO_SPLITS)}"
    )


def caps_apply(labels: np.ndarray, caps: dict, seed: int) -> np.ndarray:
    """Indices kept after capping each class to ``caps[class]`` (random, seeded)."""
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        cap = caps.get(str(c))
        if cap is not None and idx.size > int(cap):
            idx = np.sort(rng.choice(idx, int(cap), replace=False))
        keep.append(idx)
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, int)


def dataset_build(
    out_dir: str | os.PathLike,
    opts: BuildOptions = BuildOptions(),
    spec: RenderSpec = RenderSpec(),
    data: str | os.PathLike | None = None,
    progress: ProgressFn | None = None,
    workers: int | None = None,
) -> dict:
    """Build a dataset folder from every database (``data.databases``) present.

    Returns the build report (also written to ``build_report.json``). The folder
    is written under a temporary name and renamed into place at the end, so an
    interrupted build leaves any earlier dataset intact.
    """
    t0 = time.perf_counter()
    progress = progress or (lambda f, msg: None)
    root = data_dir(data)
    if not root.is_dir():
        raise EcgError(
            f"{root}: data folder not found (set ECG_DATA_DIR or --data-dir, "
            "or fetch it with 'python -m ecg_model download')"
        )
    wanted = set(opts.records)
    out_dir = Path(out_dir)
    jobs, splits, unread = [], {}, Counter()
    unknown = sorted(set(opts.databases) - set(DATABASES))
    if unknown:
        raise EcgError(
            f"unknown databases {unknown}; expected some of: {', '.join(DATABASES)}"
        )
    for db, adapter in DATABASES.items():
        if db not in opts.databases or not (root / db).is_dir():
            continue
        for e in database_records(adapter, root / db):
            name = e.name
            if wanted and f"{db}/{name}" not in wanted and name not in wanted:
                continue
            if opts.split == "patient" and e.split == "":
                continue
            if e.labels is not None:
                # Labels from a table: a recording that gives no beats is
                # counted, not read (most of PTB-XL).
                named, why = adapter.recording_class(e.labels)
                if not named:
                    unread[why] += 1
                    continue
            if adapter.index is not None and not adapter.record_exists(
                root / db / e.path
            ):
                # A table lists every record; a partial download has some.
                unread["record file missing"] += 1
                continue
            splits[(db, name)] = e.split
            if opts.split in LODO_SPLITS and name in adapter.excluded:
                continue
            # Other leads and noisy copies of training records only: a test
            # patient is seen through one lead, as recorded.
            trains = (
                e.split == "train"
                if opts.split == "patient"
                else db != opts.split.removeprefix("lodo-")
            )
            jobs.append(
                (
                    str(root / db / e.path),
                    db,
                    spec,
                    opts.vf_stride_s,
                    opts.extra_leads and trains,
                    opts.noise if trains else 0.0,
                    opts.seed,
                    e,
                )
            )
    if not jobs:
        raise EcgError(
            f"{root}: no records of {' or '.join(opts.databases)} found "
            "(or none match --records)"
        )
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        lock = _build_lock(out_dir.parent)
    except OSError as e:
        raise EcgError(f"{out_dir}: cannot write dataset ({e.strerror or e})") from None
    _stale_remove(out_dir.parent)  # we hold the lock: no build of ours is running
    tmp = None
    try:
        # A private temporary folder (two builds never share one) that becomes
        # the dataset by one rename at the end.
        tmp = Path(
            tempfile.mkdtemp(prefix=f".{out_dir.name}.building-", dir=out_dir.parent)
        )
        stage = tmp / "_stage"  # every rendered PNG, before the split sorts them
        stage.mkdir()
        report = _build_into(
            tmp, stage, jobs, opts, spec, root, progress, workers, t0, splits, unread
        )
        old = out_dir.with_name(f".{out_dir.name}.old-{tmp.name}")
        if out_dir.exists():
            out_dir.rename(old)
        tmp.rename(out_dir)
        tmp = None
        if old.exists():
            shutil.rmtree(old)
    except OSError as e:
        raise EcgError(f"{out_dir}: cannot write dataset ({e.strerror or e})") from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        os.close(lock)
    progress(1.0, f"built {report['n_images']} images in {report['elapsed_s']} s")
    return report


def databases_absent(
    databases: tuple | list, data: str | os.PathLike | None = None
) -> list[str]:
    """Those of ``databases`` without a folder in the data folder (not
    downloaded): a build asked for them reads nothing of them."""
    root = data_dir(data)
    return [d for d in databases if not (root / d).is_dir()]


def absent_note(absent: list[str]) -> str:
    """What to tell a user whose build asked for databases it does not have."""
    return (
        f"not in the data folder: {', '.join(absent)} (fetch with "
        f"`python -m ecg_model download --databases {' '.join(absent)}`)"
    )


def _build_lock(folder: Path) -> int:
    """Hold the lock on the datasets folder ``folder``; returns the fd to close.

    One build at a time per folder, across threads and processes (the CLI and
    every dashboard session): ``flock`` on the folder itself, released when the
    fd is closed or the process dies, so a crash leaves no stale lock.
    """
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise EcgError(
            f"{folder}: another dataset build is running there; "
            "wait for it to finish and try again"
        ) from None
    return fd


def _stale_remove(folder: Path) -> list[str]:
    """Remove what killed builds left in the datasets folder ``folder``: their
    private ``.<name>.building-*`` folders, and ``.<name>.old-*`` folders (the
    dataset a build was replacing: put back where the new one never arrived).
    The caller holds the folder's build lock. Returns the names handled."""
    done = []
    for p in sorted(folder.glob(".*.building-*")) + sorted(folder.glob(".*.old-*")):
        if not p.is_dir():
            continue
        name = p.name[1:].split(".old-")[0] if ".old-" in p.name else ""
        if name and not (folder / name).exists():
            p.rename(folder / name)
        else:
            shutil.rmtree(p, ignore_errors=True)
        done.append(p.name)
    return done


def datasets_stale_clean(folder: str | os.PathLike) -> list[str]:
    """Clean what killed builds left in ``folder`` (see :func:`_stale_remove`)
    when no build is running there; returns the names handled ([] when a build
    holds the folder, or it does not exist)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    try:
        lock = _build_lock(folder)
    except (EcgError, OSError):
        return []  # a build is running: its folders are not stale
    try:
        return _stale_remove(folder)
    finally:
        os.close(lock)


def _build_into(
    tmp: Path,
    stage: Path,
    jobs: list[tuple],
    opts: BuildOptions,
    spec: RenderSpec,
    root: Path,
    progress: ProgressFn,
    workers: int | None,
    t0: float,
    splits: dict[tuple[str, str], str],
    unread: Counter,
) -> dict:
    """The build proper, into the temporary folder ``tmp``; returns the report.

    ``splits``: (database, record) -> patient-protocol split of each job;
    ``unread``: recordings skipped by their table's labels, by reason.
    """
    # 1. records -> beats and windows, rendered and staged as PNGs (in parallel:
    #    one record a task).
    metas, bits, skipped = [], [], Counter(unread)
    workers = workers or min(len(jobs), os.cpu_count() or 1)
    with ProcessPoolExecutor(workers) as ex:
        tasks = [(*j, str(stage)) for j in jobs]
        for i, (m, bt, sk) in enumerate(ex.map(_record_items, tasks)):
            metas.append(m)
            bits.append(bt)
            skipped.update(sk)
            progress(
                0.85 * (i + 1) / len(jobs),
                f"read and drew record {i + 1} of {len(jobs)} "
                f"({jobs[i][1]}/{Path(jobs[i][0]).name})",
            )
    meta = pd.concat(metas, ignore_index=True)
    packed = np.concatenate(bits)  # (n, h, ceil(w / 8)) ink bits
    if len(meta) == 0:
        raise EcgError(f"{root}: the selected records hold no beats of the six classes")

    # 2. split, then cap the training part (the test part is never capped).
    meta["split"] = _split_assign(meta, opts, splits)
    excluded = int((meta["split"] == "").sum())
    tr = np.flatnonzero(meta["split"] == "train")
    te = np.flatnonzero(meta["split"] == "test")
    tr = tr[caps_apply(meta["class"].to_numpy()[tr], opts.caps, opts.seed)]
    keep = np.sort(np.concatenate([tr, te]))
    meta, packed = meta.iloc[keep].reset_index(drop=True), packed[keep]
    meta["shift"] = 0

    # 3. top up rare training classes by redrawing with the window shifted.
    if opts.min_per_class > 0:
        meta, packed = _top_up(meta, packed, opts, spec, root, stage)

    # 4. sort the staged PNGs into split/class folders (a rename each; what the
    #    split or the caps left out is deleted with the staging folder).
    staged = [
        _png_name(d, r, n, sh, ld)
        for d, r, n, sh, ld in zip(
            meta["database"],
            meta["record"],
            meta["sample"],
            meta["shift"],
            meta[EXTRA_LEAD],
        )
    ]
    paths = [f"{s}/{c}/{f}" for s, c, f in zip(meta["split"], meta["class"], staged)]
    meta.insert(0, "path", paths)
    for s in ("train", "test"):
        for c in CLASSES:
            (tmp / s / c).mkdir(parents=True, exist_ok=True)
    for j, (f, p) in enumerate(zip(staged, paths)):
        os.rename(stage / f, tmp / p)
        if j % 20000 == 0:
            progress(0.85 + 0.1 * j / len(paths), f"sorted {j} of {len(paths)} images")
    shutil.rmtree(stage)
    meta[[*MANIFEST_COLUMNS, EXTRA_LEAD, PATIENT]].to_csv(
        tmp / "manifest.csv", index=False
    )
    np.savez(
        tmp / "cache.npz",
        bits=packed,
        width=spec.image_width,
        paths=np.asarray(paths),
    )
    report = {
        "split": opts.split,
        "n_images": len(meta),
        "counts": {
            s: {
                c: int(((meta["split"] == s) & (meta["class"] == c)).sum())
                for c in CLASSES
            }
            for s in ("train", "test")
        },
        "records": {
            s: sorted(
                set(
                    meta.loc[meta["split"] == s, "database"]
                    + "/"
                    + meta.loc[meta["split"] == s, "record"]
                )
            )
            for s in ("train", "test")
        },
        "by_database": {
            str(d): {c: int(n) for c, n in g["class"].value_counts().items()}
            for d, g in meta.groupby("database")
        },
        "by_record": {
            f"{d}/{r}": int(n)
            for (d, r), n in meta.groupby(["database", "record"]).size().items()
        },
        "skipped": dict(sorted(skipped.items())),
        "excluded_beats": excluded,
        "missing_databases": databases_absent(opts.databases, root),
        "topped_up": int((meta["shift"] != 0).sum()),
        "extra_leads": {
            str(ld): {c: int(n) for c, n in g["class"].value_counts().items()}
            for ld, g in meta[~lead_first(meta)].groupby(EXTRA_LEAD)
        },
        "elapsed_s": round(time.perf_counter() - t0, 2),
    }
    atomic_write_json(tmp / "build_report.json", report)
    atomic_write_json(
        tmp / "dataset.json",
        {
            "preprocessing": spec.to_json(),
            "options": asdict(opts),
            "data_dir": str(root),
        },
    )
    return report


def _top_up(
    meta: pd.DataFrame,
    packed: np.ndarray,
    opts: BuildOptions,
    spec: RenderSpec,
    root: Path,
    stage: Path,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Add shifted redraws of rare training beats up to ``min_per_class`` a class.

    The new images are staged as PNGs in ``stage``; returns the grown manifest
    and packed ink bits.
    """
    rng = np.random.default_rng(opts.seed + 1)
    extra_meta, extra_bits = [], []
    # Redrawn from the first lead only (the one the record is read with here).
    train = meta[(meta["split"] == "train") & lead_first(meta)]
    cache: dict = {}
    for c in CLASSES:
        rows = train[train["class"] == c]
        need = opts.min_per_class - len(rows)
        if need <= 0 or len(rows) == 0:
            continue
        # A shift of 1..5 samples (4..20 ms) either way: a different window of
        # the same real beat. Each (beat, shift) pair is drawn at most once.
        shifts = np.array([-5, -4, -3, -2, -1, 1, 2, 3, 4, 5])
        k = rng.choice(
            len(rows) * shifts.size, min(need, len(rows) * shifts.size), replace=False
        )
        pick = rows.iloc[k // shifts.size].copy()
        pick["shift"] = shifts[k % shifts.size]
        for (db, rn), grp in pick.groupby(["database", "record"]):
            if (db, rn) not in cache:
                cache[(db, rn)] = record_of(record_path(root, db, rn), db, spec.fs).sig
            sig = cache[(db, rn)]
            centres = np.clip(
                grp["sample"].to_numpy() + grp["shift"].to_numpy(),
                spec.before,
                sig.size - spec.after,
            )
            imgs = windows_render(sig, centres, spec)  # (n, h, w)
            names = [
                _png_name(db, rn, n, sh) for n, sh in zip(grp["sample"], grp["shift"])
            ]
            extra_bits.append(_images_stage(stage, names, imgs))
            extra_meta.append(grp)
    if not extra_meta:
        return meta, packed
    return (
        pd.concat([meta, *extra_meta], ignore_index=True),
        np.concatenate([packed, *extra_bits]),
    )


# ---------------------------------------------------------------------------
# Loading


@dataclass
class Dataset:
    """Images and labels of one dataset folder.

    ``x_train``/``x_test``: uint8 images, shape ``(n, image_height, image_width)``
    (a :class:`~.packed.Packed` set of ink bits where the build's cache has them);
    ``y_train``/``y_test``: class indices, shape ``(n,)``; ``meta_*``: the
    manifest rows in the same order.
    """

    root: Path
    x_train: np.ndarray | Packed
    y_train: np.ndarray
    x_test: np.ndarray | Packed
    y_test: np.ndarray
    meta_train: pd.DataFrame
    meta_test: pd.DataFrame
    spec: RenderSpec


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
#: Share of a class's pictures a folder without ``test/`` holds out for testing.
FOLDER_TEST_SHARE = 0.3


def folder_classes(root: str | os.PathLike) -> dict[str, str]:
    """How a ``train|test/<Class>/`` image folder's class folders map to the
    project's classes: ``{"train/Premature Ventricular Contractions": "Premature
    Ventricular Contraction", ...}`` (shown to the user before anything trains).

    Raises
    ------
    EcgError
        A class folder whose name is no class (named, never silently dropped),
        or no ``train/`` folder.
    """
    root = Path(root)
    if not (root / "train").is_dir():
        raise EcgError(
            f"{root}: no images: no train/ folder (expected train/<Class>/ and, "
            "optionally, test/<Class>/)"
        )
    out, unknown = {}, []
    for s in ("train", "test"):
        if not (root / s).is_dir():
            continue
        for d in sorted(p for p in (root / s).iterdir() if p.is_dir()):
            c = class_from_name(d.name)
            if c is None:
                unknown.append(f"{s}/{d.name}")
            else:
                out[f"{s}/{d.name}"] = c
    if unknown:
        raise EcgError(
            f"{root}: class folder {', '.join(unknown)} names no class; the "
            f"classes are {', '.join(CLASSES)} (or N, LBBB, PAC/APC, PVC, RBBB, "
            "VF, or MIT-BIH's N, L, A, V, R): rename or remove it"
        )
    return out


def _folder_manifest(root: Path) -> pd.DataFrame:
    """Manifest of a plain ``train|test/<Class>/*`` image folder (class folders
    named as :func:`folder_classes` reads them). A folder without ``test/``
    gets a stratified share (:data:`FOLDER_TEST_SHARE`) held out, seeded.
    ``attrs["duplicates"]`` counts test pictures byte-identical to a training
    picture (a test that repeats training pictures measures nothing)."""
    import hashlib

    rows = []
    for folder, c in folder_classes(root).items():
        s = folder.split("/", 1)[0]
        for p in sorted((root / folder).iterdir()):
            if p.suffix.lower() in IMAGE_SUFFIXES:
                rows.append(
                    {
                        "path": f"{folder}/{p.name}",
                        "database": "folder",
                        "record": "",
                        "sample": -1,
                        "time_s": float("nan"),
                        "symbol": "",
                        "class": c,
                        "split": s,
                    }
                )
    m = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    m.attrs["split_made"] = False
    if len(m) and not (m["split"] == "test").any():
        counts = m["class"].value_counts()
        strat = m["class"] if (counts >= 2).all() else None
        _, te = train_test_split(
            np.arange(len(m)), test_size=FOLDER_TEST_SHARE, random_state=0,
            stratify=strat,
        )  # fmt: skip
        m.loc[te, "split"] = "test"
        m.attrs["split_made"] = True
    # Byte-identical pictures have the same size: only pictures whose size the
    # other part shares are read and hashed (a page reads the manifest on
    # every rerun).
    size = {p: (root / p).stat().st_size for p in m["path"]}
    tr, te = (list(m.loc[m["split"] == k, "path"]) for k in ("train", "test"))
    shared = {size[p] for p in tr} & {size[p] for p in te}

    def digest(p: str) -> str:
        return hashlib.sha1((root / p).read_bytes()).hexdigest()

    seen = {digest(p) for p in tr if size[p] in shared}
    m.attrs["duplicates"] = sum(digest(p) in seen for p in te if size[p] in shared)
    return m


def folder_notes(root: str | os.PathLike) -> list[str]:
    """What reading an image folder (no ``manifest.csv``) will do, in lines for
    the user: each class folder's class, a split made where there is no
    ``test/``, and test pictures that repeat training pictures. Empty for a
    built dataset.

    Raises
    ------
    EcgError
        As :func:`folder_classes`.
    """
    root = Path(root)
    if (root / "manifest.csv").exists():
        return []
    m = _folder_manifest(root)
    counts = m.groupby(m["path"].str.rsplit("/", n=1).str[0]).size()
    lines = [
        f"{folder} -> {c} ({int(counts.get(folder, 0))} pictures)"
        for folder, c in folder_classes(root).items()
    ]
    if m.attrs.get("split_made"):
        lines.append(
            f"no test/ folder: {FOLDER_TEST_SHARE:.0%} of each class's pictures "
            "held out for testing (stratified, seed 0)"
        )
    if m.attrs.get("duplicates"):
        lines.append(
            f"warning: {m.attrs['duplicates']} test pictures are byte-identical "
            "to training pictures: their test figures measure memory, not reading"
        )
    return lines


def _inside(root: Path, rel: str) -> bool:
    """Whether the manifest path ``rel`` names a file inside ``root``.

    Lexical: no absolute path, no ``..``. Links inside a dataset folder are the
    server's own (fold datasets link their run's images) and are followed.
    """
    p = Path(str(rel))
    return bool(str(rel)) and not p.is_absolute() and ".." not in p.parts


def manifest_read(root: str | os.PathLike) -> pd.DataFrame:
    """The dataset's manifest (``manifest.csv``, or made from the folder layout).

    Rows whose path leaves the dataset folder (absolute, ``..``) are dropped;
    ``attrs["outside"]`` counts them.
    """
    root = Path(root)
    if not root.is_dir():
        raise EcgError(f"{root}: dataset folder not found")
    if (root / "manifest.csv").exists():
        try:
            m = pd.read_csv(root / "manifest.csv", dtype={"record": str, PATIENT: str})
        except Exception as e:
            raise EcgError(
                f"{root / 'manifest.csv'}: unreadable manifest ({e})"
            ) from None
        missing = set(MANIFEST_COLUMNS) - set(m.columns)
        if missing:
            raise EcgError(
                f"{root / 'manifest.csv'}: missing columns {sorted(missing)}"
            )
        ok = np.array([_inside(root, p) for p in m["path"].astype(str)], dtype=bool)
        m = m[ok].reset_index(drop=True)
        m.attrs["outside"] = int((~ok).sum())
        m[EXTRA_LEAD] = (
            m[EXTRA_LEAD].fillna("").astype(str) if EXTRA_LEAD in m.columns else ""
        )
        return m
    m = _folder_manifest(root)
    attrs = dict(m.attrs)
    m[EXTRA_LEAD] = ""
    m.attrs.update(attrs)
    if m.empty:
        raise EcgError(
            f"{root}: no images in train/<Class Name>/ or test/<Class Name>/ "
            f"(class names: {', '.join(CLASSES)})"
        )
    return m


def dataset_options(root: str | os.PathLike) -> dict:
    """The build options a dataset folder was built with (``dataset.json``);
    empty when it does not say or cannot be read."""
    try:
        opts = json_read(Path(root) / "dataset.json")["options"]
    except (OSError, EcgError, KeyError, TypeError):
        return {}
    return opts if isinstance(opts, dict) else {}


def dataset_spec(root: str | os.PathLike) -> RenderSpec | None:
    """The drawing contract a dataset folder was built with; None when it does
    not say (a folder of pictures from elsewhere) or cannot be read."""
    f = Path(root) / "dataset.json"
    try:
        return RenderSpec.from_json(json_read(f)["preprocessing"])
    except (OSError, EcgError, KeyError, TypeError, ValueError):
        return None


def dataset_load(root: str | os.PathLike, spec: RenderSpec) -> Dataset:
    """Load a dataset folder as arrays drawn to ``spec``.

    A folder built by :func:`dataset_build` with the same drawing contract loads
    from its ``cache.npz``; any other folder (e.g. the original report's images)
    is read image by image through the same normalisation the predictor uses.
    """
    root = Path(root)
    meta = manifest_read(root)
    info = json_read(root / "dataset.json") if (root / "dataset.json").exists() else {}
    same = (
        RenderSpec.from_json(info.get("preprocessing", {})) == spec if info else False
    )
    x = None
    if same and (root / "cache.npz").exists():
        with np.load(root / "cache.npz") as z:
            order = {p: i for i, p in enumerate(z["paths"].tolist())}
            if all(p in order for p in meta["path"]):
                sel = [order[p] for p in meta["path"]]
                if "bits" in z:
                    # Kept as bits (0.4 GB for a full build at 256 columns, 3.2
                    # GB unpacked); training unpacks a batch at a time.
                    x = Packed(z["bits"][sel], int(z["width"]))
                else:
                    x = z["images"][sel]
    if x is None:

        def load(p: str) -> np.ndarray:
            return image_normalize(image_read(root / p), spec)[0]

        with ThreadPoolExecutor(4) as ex:
            x = (
                np.stack(list(ex.map(load, meta["path"], chunksize=256)))
                if len(meta)
                else np.zeros((0, spec.image_height, spec.image_width), np.uint8)
            )
    y = meta["class"].map({c: i for i, c in enumerate(CLASSES)}).to_numpy()
    if np.isnan(y.astype(float)).any():
        raise EcgError(
            f"{root}: manifest has class names outside: {', '.join(CLASSES)}"
        )
    tr = (meta["split"] == "train").to_numpy()
    te = (meta["split"] == "test").to_numpy()
    return Dataset(
        root,
        x[tr],
        y[tr].astype(np.int64),
        x[te],
        y[te].astype(np.int64),
        meta[tr].reset_index(drop=True),
        meta[te].reset_index(drop=True),
        spec,
    )


def dataset_name(
    split: str,
    databases: tuple = DEFAULT_DATABASES,
    image_width: int = RenderSpec.image_width,
    extra_leads: bool = False,
    noise: float = 0.0,
    view: str = "window",
) -> str:
    """Folder name for a build under ``artifacts/datasets``: the split, then
    what differs from the defaults (``patient-all-w128-leads-noise30``,
    ``patient-all-w128-thumbs``). ``all``
    is the new-patient protocol's databases (``PROTOCOL_DATABASES``), and
    ``all+incartdb+ptbxl`` those and the fetched extras."""
    name = split
    if tuple(databases) != tuple(DEFAULT_DATABASES):
        extra = [d for d in databases if d not in PROTOCOL_DATABASES]
        if set(PROTOCOL_DATABASES) <= set(databases):
            name += "-" + "+".join(["all", *extra])
        else:
            name += "-" + "+".join(databases)
    if image_width != RenderSpec.image_width:
        name += f"-w{image_width}"
    name += "-leads" if extra_leads else ""
    name += f"-noise{round(100 * noise)}" if noise else ""
    return name + ("-thumbs" if view == "thumbnail" else "")


def lead_first(meta: pd.DataFrame) -> np.ndarray:
    """Rows drawn from the record's first lead, shape ``(n,)`` bool (not an
    ``extra_leads`` view): one row a beat, as a record's rhythm needs."""
    if EXTRA_LEAD not in meta.columns:
        return np.ones(len(meta), bool)
    return (meta[EXTRA_LEAD].fillna("").astype(str) == "").to_numpy()


def patient_ids(meta: pd.DataFrame) -> np.ndarray:
    """``"<database>/<patient>"`` of each manifest row, shape ``(n,)``: the
    unit of every new-patient split and interval. The patient is the record,
    except where the manifest's ``patient`` column names another (PTB-XL's
    ``patient_id``: several records a patient)."""
    who = meta["record"].astype(str)
    if PATIENT in meta.columns:
        named = meta[PATIENT].fillna("").astype(str)
        who = who.where(named == "", named)
    return (meta["database"].astype(str) + "/" + who).to_numpy()


def split_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """The new-patient protocol as a table: one row per record of a patient
    build (a tabled database's splits are taken from its rows).

    Columns ``database, record, split`` (``train`` or ``test``, from the
    adapters) and the record's images per class. Written to
    ``artifacts/splits/patient.csv`` by ``python -m ecg_model splits``, so the
    test patients are on record beside the code that fixes them.
    """
    m = manifest.assign(record=manifest["record"].astype(str))
    # A database with a table (PTB-XL) has its splits there; the build wrote
    # them into the manifest.
    tabled = {
        (d, r): s
        for d, r, s in zip(m["database"], m["record"], m["split"])
        if d in DATABASES and DATABASES[d].index is not None
    }
    counts = (
        m.groupby(["database", "record", "class"]).size().unstack(fill_value=0)
    ).reindex(columns=list(CLASSES), fill_value=0)
    out = counts.reset_index()
    out.insert(
        2,
        "split",
        [
            tabled.get((d, r)) or DATABASES[d].patient_split(r)
            for d, r in zip(out["database"], out["record"])
        ],
    )
    order = {d: i for i, d in enumerate(DATABASES)}
    out = out.sort_values(
        ["database", "record"],
        key=lambda c: c.map(order) if c.name == "database" else c,
    )
    return out.reset_index(drop=True)


def sample_image(root: str | os.PathLike, rel: str) -> np.ndarray | None:
    """A dataset picture as RGB uint8 ``(h, w, 3)``, or None when unreadable.

    None also for a path that leaves ``root``; a page counts what it skipped.
    """
    root = Path(root)
    if not _inside(root, rel):
        return None
    try:
        return image_read(root / rel)
    except EcgError:
        return None


def dataset_preview(
    root: str | os.PathLike, spec: RenderSpec, per_class: int = 1, seed: int = 0
) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """Training pictures of a dataset as they are and as a model of ``spec``
    sees them: ``(class, path, picture (h, w, 3), image (image_height,
    image_width))``, up to ``per_class`` of each class, drawn at random.

    Every picture, built or from elsewhere, goes through the normalisation
    a dataset load and the predictor use
    (:func:`~ecg_model.data.render.image_normalize`). Unreadable pictures are
    left out.
    """
    meta = manifest_read(root)
    meta = meta[meta["split"] == "train"]
    rng = np.random.default_rng(seed)
    out = []
    for c in CLASSES:
        sub = meta[meta["class"] == c]
        pick = rng.choice(len(sub), min(per_class, len(sub)), replace=False)
        for rel in sub["path"].iloc[pick]:
            pic = sample_image(root, rel)
            if pic is not None:
                out.append((c, str(rel), pic, image_normalize(pic, spec)[0]))
    return out


def counts_by_record(manifest: pd.DataFrame) -> pd.DataFrame:
    """Images per record (rows) and class (columns), with the record's split."""
    t = manifest.assign(
        rec=manifest["database"].astype(str) + "/" + manifest["record"].astype(str)
    )
    piv = t.pivot_table(
        index=["rec", "split"],
        columns="class",
        values="path",
        aggfunc="count",
        fill_value=0,
    )
    piv = piv.reindex(columns=[c for c in CLASSES if c in piv.columns])
    return piv.reset_index().rename(columns={"rec": "record"})


def manifest_filter(
    manifest: pd.DataFrame,
    classes: list[str] | None = None,
    splits: list[str] | None = None,
    records: list[str] | None = None,
    n: int = 24,
    seed: int = 0,
) -> pd.DataFrame:
    """Up to ``n`` rows matching the filters (random, seeded) for a sample grid."""
    m = manifest
    if classes:
        m = m[m["class"].isin(classes)]
    if splits:
        m = m[m["split"].isin(splits)]
    if records:
        m = m[m["record"].astype(str).isin(records)]
    return m.sample(min(n, len(m)), random_state=seed) if len(m) else m


def sample_signal(
    row: pd.Series,
    spec: RenderSpec,
    data: str | os.PathLike | None = None,
    context_s: float = 2.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The cleaned signal around a manifest row's beat: (time_s, mV), or None.

    Time is relative to the beat; ``context_s`` more seconds are shown on each
    side of the drawn window. The lead is the one the row's picture was drawn
    from (an ``extra_leads`` row names its own; a ``noise`` row is the first
    lead with the noise its build drew, from the build's ``seed``). None when
    the row has no source record (or lead) here.
    """
    root = data_dir(data)
    path = record_path(root, str(row["database"]), str(row["record"]))
    adapter = DATABASES.get(str(row["database"]))
    here = adapter.record_exists(path) if adapter else Path(f"{path}.hea").exists()
    if int(row.get("sample", -1)) < 0 or not here:
        return None
    lead = row.get(EXTRA_LEAD, "")
    lead = "" if pd.isna(lead) else str(lead)
    noisy = lead == NOISE_LEAD
    rec = record_of(
        path, str(row["database"]), spec.fs, all_leads=bool(lead) and not noisy
    )
    sig = rec.others.get(lead) if lead and not noisy else rec.sig
    if noisy:
        key = f"{row['database']}/{row['record']}"
        sig = sig + noise_make(sig, spec.fs, key, seed)
    if sig is None:
        return None
    c = int(row["sample"])
    a = max(0, c - spec.before - int(context_s * spec.fs))
    b = min(sig.size, c + spec.after + int(context_s * spec.fs))
    return (np.arange(a, b) - c) / spec.fs, sig[a:b]


def beats_sample(
    root: str | os.PathLike,
    part: str,
    per_class: int,
    rng: np.random.Generator,
    spec: RenderSpec,
    records: tuple[str, ...] = (),
) -> tuple[pd.DataFrame, dict[tuple[str, str], np.ndarray]]:
    """Up to ``per_class`` labelled beats of each class, drawn at random from
    the patient protocol's test patients (``part="test"``: every database's
    ``test_records``) or its training patients (``"train"``).

    ``records``: only these (``db/record`` or ``record``). Returns a frame of
    ``database, record, sample, class`` (samples at ``spec.fs``) and each
    record's signal (mV at ``spec.fs``) by ``(database, record)``.

    Raises
    ------
    EcgError
        No such record is in ``root``.
    """
    root = Path(root)
    if part == "test":
        sources = [
            (db, RecordEntry(r, r, "test", r))
            for db in DATABASES.values()
            for r in db.test_records
        ]
    else:
        sources = [
            (db, e)
            for db in DATABASES.values()
            if (root / db.name).is_dir()
            for e in database_records(db, root / db.name)
            if e.split == "train"
        ]
    if records:
        sources = [
            s
            for s in sources
            if f"{s[0].name}/{s[1].name}" in records or s[1].name in records
        ]
    sigs, picks = {}, []
    for adapter, e in sources:
        db, rn = adapter.name, e.name
        if not adapter.record_exists(root / db / e.path):
            continue
        rec = record_of(root / db / e.path, db, spec.fs)
        sigs[(db, rn)] = rec.sig
        centres, _, labels, _ = record_labelled(rec, adapter, spec, labels=e.labels)
        picks += [(db, rn, int(s), lab) for s, lab in zip(centres, labels)]
    if not picks:
        raise EcgError(f"{root}: no {part} records found")
    df = pd.DataFrame(picks, columns=["database", "record", "sample", "class"])
    chosen = []
    for c in CLASSES:
        sub = df[df["class"] == c]
        if len(sub):
            chosen.append(
                sub.iloc[rng.choice(len(sub), min(per_class, len(sub)), replace=False)]
            )
    return pd.concat(chosen, ignore_index=True), sigs
