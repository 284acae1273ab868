"""What a database adapter says: where its records are, which lead to read, how
its labels map to the six classes, and which of its patients test.

Adding a database is one module beside this one that makes a :class:`Database`,
and one line in ``databases/__init__.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

#: How a database labels its records.
#: ``beats``: every beat annotated with a PhysioNet beat code
#: (``core.classes.BEAT_SYMBOLS`` maps the codes to classes);
#: ``vf_episodes``: rhythm annotations (``+`` with ``(VF``...); windows inside
#: flutter/fibrillation episodes are the Ventricular Fibrillation class;
#: ``vf_brackets``: the same, with episodes from a ``[`` to the next ``]``;
#: ``recording``: one label set per recording (``#Dx:`` in the header), beats
#: found by the QRS detector (see ``cpsc2018``).
LABELS = ("beats", "vf_episodes", "vf_brackets", "recording")


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

    @property
    def annotated(self) -> bool:
        """Whether its records have ``atr`` annotations."""
        return self.labels != "recording"

    def __post_init__(self) -> None:
        if self.labels not in LABELS:
            raise ValueError(f"labels must be one of {LABELS}, not {self.labels!r}")

    def patient_split(self, record: str) -> str:
        """``"train"``, ``"test"`` or ``""`` (left out) in the patient protocol."""
        record = str(record)
        if record in self.excluded:
            return ""
        if record in self.test_records:
            return "test"
        if self.train_records is None or record in self.train_records:
            return "train"
        return ""
