"""What a database adapter says: where its records are, which lead to read, how
its labels map to the six classes, and which of its patients test.

Adding a database is one module beside this one that makes a :class:`Database`,
and one line in ``databases/__init__.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ...core.errors import EcgError

#: How a database labels its records.
#: ``beats``: every beat annotated with a PhysioNet beat code
#: (``core.classes.BEAT_SYMBOLS`` maps the codes to classes);
#: ``vf_episodes``: rhythm annotations (``+`` with ``(VF``...); windows inside
#: flutter/fibrillation episodes are the Ventricular Fibrillation class;
#: ``vf_brackets``: the same, with episodes from a ``[`` to the next ``]``;
#: ``recording``: one label set per recording (``#Dx:`` in the header), beats
#: found by the QRS detector (see ``cpsc2018``).
LABELS = ("beats", "vf_episodes", "vf_brackets", "recording")


def fetch_by_hand(what: str) -> Callable[[str, Path], None]:
    """A ``fetch`` for a database no download serves: it says where ``what``
    (its files) come from and where to put them."""

    def fetch(source: str, folder: Path) -> None:
        raise EcgError(f"{what}: copy them into {folder}")

    return fetch


@dataclass(frozen=True)
class RecordEntry:
    """One record of a database as a build reads it.

    Attributes
    ----------
    name : str
        Record name (a file stem, no folders): the manifest's ``record``.
    path : str
        Path of the record under the database folder, without extension.
    split : str
        ``"train"``, ``"test"`` or ``""`` (left out) in the patient protocol.
    patient : str
        The patient it comes from (records of one patient never straddle a
        split, and intervals are taken over patients).
    labels : tuple of str or None
        For ``recording`` databases whose labels are in a table rather than
        in the header: the recording's label codes; None: read the header.
    """

    name: str
    path: str
    split: str
    patient: str
    labels: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Database:
    """One PhysioNet database as the project reads it.

    Attributes
    ----------
    name : str
        Folder name under the data folder, and PhysioNet's name for it.
    title : str
        Full name, for reports.
    fs : float
        Native sampling rate, Hz (every record is resampled to the drawing
        contract's rate when read).
    leads : tuple of str
        Lead names in order of preference; the first one a record has is read,
        else its first signal.
    labels : str
        One of :data:`LABELS`.
    test_records : tuple of str
        Records of the patient protocol's test part, fixed once.
    train_records : tuple of str or None
        Records of its training part; None: every record not in
        ``test_records`` or ``excluded``.
    excluded : tuple of str
        Records left out of the patient protocol (e.g. paced records).
    symbols : dict or None
        Beat code -> class for ``beats`` databases; None: PhysioNet's codes as
        mitdb uses them (``core.classes.BEAT_SYMBOLS``).
    recording_classes : dict or None
        For ``recording`` databases: recording label -> the class of its beats.
    recording_excluded : tuple of str
        For ``recording`` databases: labels whose recordings give no beats.
    physionet : str
        Where ``download`` fetches it on PhysioNet; empty: ``name``.
    index : callable or None
        For databases described by a table (PTB-XL): ``index(db_dir)`` ->
        list of :class:`RecordEntry`, the records with their paths, splits,
        patients and labels, from the database's own table; None: the records
        are those listed in ``RECORDS`` (or the ``.hea`` files), each its own
        patient, split by ``test_records``/``train_records``/``excluded``.
    fetch : callable or None
        ``fetch(source, dl_dir)``: how ``download`` fetches a database that
        PhysioNet's record-by-record download does not suit (its table, then
        only the records a build can use); None: ``wfdb.dl_database``.
    recording_rule : callable or None
        For ``recording`` databases whose labels need more than one list:
        ``rule(labels)`` -> ``(label of recording_classes, "")`` or ``("",
        reason)``; None: :meth:`recording_class`'s lists.
    read : callable or None
        For a database not stored as WFDB records: ``read(path, fs,
        all_leads)`` -> ``signals.Record`` of the record at ``path`` (the data
        folder's ``<db>/<entry.path>``); None: ``signals.record_read``.
    exists : callable or None
        With ``read``: ``exists(path)``, whether that record is there; None:
        its ``.hea`` file is.
    wide_qrs_records : tuple of str
        For ``beats`` databases whose codes do not name bundle branch blocks:
        records whose every conducted beat has a QRS of 120 ms or more, which
        the database labels ``N``. Their Normal beats are left out (skipped as
        ``"N with wide QRS"``): they would teach that a blocked beat is Normal,
        and which block it is is not given.
    """

    name: str
    title: str
    fs: float
    leads: tuple[str, ...]
    labels: str
    test_records: tuple[str, ...] = ()
    train_records: tuple[str, ...] | None = None
    excluded: tuple[str, ...] = ()
    symbols: dict[str, str] | None = None
    recording_classes: dict[str, str] | None = None
    recording_excluded: tuple[str, ...] = ()
    physionet: str = ""
    wide_qrs_records: tuple[str, ...] = ()
    index: Callable[[Path], list[RecordEntry]] | None = None
    fetch: Callable[[str, Path], None] | None = None
    recording_rule: Callable[[tuple[str, ...] | set[str]], tuple[str, str]] | None = (
        None
    )
    read: Callable[[Path, float, bool], object] | None = None
    exists: Callable[[Path], bool] | None = None

    @property
    def annotated(self) -> bool:
        """Whether its records have ``atr`` annotations."""
        return self.labels != "recording"

    def record_exists(self, path: str | Path) -> bool:
        """Whether the record at ``path`` (no extension) is in the data folder."""
        if self.exists is not None:
            return self.exists(Path(path))
        return Path(f"{path}.hea").exists()

    def __post_init__(self) -> None:
        if self.labels not in LABELS:
            raise ValueError(f"labels must be one of {LABELS}, not {self.labels!r}")

    def recording_class(self, labels: tuple[str, ...] | set[str]) -> tuple[str, str]:
        """Which of ``recording_classes`` a recording's labels name.

        Returns ``(label, "")`` when its beats are of that label's class, or
        ``("", reason)`` when the recording gives no beats: a label of
        ``recording_excluded``, several classes, or none.
        """
        if self.recording_rule is not None:
            return self.recording_rule(labels)
        dx, classes = set(labels), self.recording_classes or {}
        named = sorted(dx & set(classes))
        bad = sorted(dx & set(self.recording_excluded))
        if bad or len(named) > 1:
            return "", "recording " + "+".join(bad or named)
        if not named:
            return "", "recording with none of " + "/".join(classes)
        return named[0], ""

    def patient_split(self, record: str) -> str:
        """``"train"``, ``"test"`` or ``""`` (left out) in the patient protocol,
        by the adapter's record lists (a database with an ``index`` takes its
        splits from it: ``dataset.database_records``)."""
        record = str(record)
        if record in self.excluded:
            return ""
        if record in self.test_records:
            return "test"
        if self.train_records is None or record in self.train_records:
            return "train"
        return ""
