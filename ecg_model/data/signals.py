"""Read PhysioNet records, clean the signal, and find labelled beats and VF windows.

The pipeline for one record reads as: read -> pick lead -> resample -> clean ->
beats (mitdb beat labels) or VF windows (vfdb rhythm episodes).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import wfdb
from scipy import signal as sps

from ..core.classes import BEAT_SYMBOLS, VF_RHYTHMS
from ..core.errors import EcgError

#: Default sampling rate every signal is resampled to (Hz).
FS = 250.0

#: Sampling rates accepted in a WFDB header, Hz: from a slow Holter channel to
#: a high-rate research recording. Outside it the header is refused unread: a
#: rate of 0 divides by zero, and a rate of 1 Hz makes resampling to 250 Hz
#: allocate 250 times the record.
FS_RANGE = (50.0, 2000.0)
#: Most signals a record may declare (a 12-lead ECG with spare channels).
MAX_SIGNALS = 64
#: Longest record read, s (a 24-hour Holter).
MAX_RECORD_S = 24 * 3600.0
#: Largest header accepted, bytes (a real one is under a few kilobytes).
MAX_HEADER_BYTES = 64 * 1024


@dataclass(frozen=True)
class Header:
    """What a WFDB header's record line declares."""

    n_sig: int
    fs: float
    sig_len: int | None  # samples per signal, None where the header omits it

    @property
    def duration_s(self) -> float | None:
        return None if self.sig_len is None else self.sig_len / self.fs


def header_check(text: str, label: str, max_duration_s: float = MAX_RECORD_S) -> Header:
    """Validate a WFDB header before any of its record is read.

    Parameters
    ----------
    text : str
        The header file's text.
    label : str
        Names the file in errors.
    max_duration_s : float
        Longest record accepted, s.

    Raises
    ------
    EcgError
        Not a header, too many signals or lines, a rate outside :data:`FS_RANGE`,
        or a record longer than ``max_duration_s``.
    """
    if len(text) > MAX_HEADER_BYTES:
        raise EcgError(
            f"{label}: WFDB header too large (over {MAX_HEADER_BYTES // 1024} KB; "
            "a header names a few signals in a few hundred bytes)"
        )
    body = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if not body:
        raise EcgError(f"{label}: empty WFDB header")
    first = body[0].split()
    try:
        n_sig = int(first[1])
    except (IndexError, ValueError):
        raise EcgError(f"{label}: not a WFDB header (bad record line)") from None
    if "/" in first[0]:
        raise EcgError(f"{label}: multi-segment records are not supported")
    if not 1 <= n_sig <= MAX_SIGNALS or len(body) > 1 + n_sig:
        raise EcgError(
            f"{label}: WFDB header declares {n_sig} signals in {len(body) - 1} "
            f"lines; 1 to {MAX_SIGNALS} signals, one line each, are accepted"
        )
    fs = 250.0  # WFDB's default when the record line gives none
    if len(first) > 2:
        m = re.match(r"[0-9.eE+-]+", first[2])
        try:
            fs = float(m.group(0)) if m else float("nan")
        except ValueError:
            fs = float("nan")
    if not FS_RANGE[0] <= fs <= FS_RANGE[1]:
        raise EcgError(
            f"{label}: sampling rate {first[2] if len(first) > 2 else fs} Hz is "
            f"outside {FS_RANGE[0]:g}-{FS_RANGE[1]:g} Hz"
        )
    sig_len = None
    if len(first) > 3:
        try:
            sig_len = int(first[3])
        except ValueError:
            raise EcgError(f"{label}: bad number of samples {first[3]!r}") from None
        if sig_len < 0:
            raise EcgError(f"{label}: negative number of samples")
    h = Header(n_sig, fs, sig_len)
    if h.duration_s is not None and h.duration_s > max_duration_s:
        raise EcgError(
            f"{label}: record too long ({h.duration_s / 3600:.1f} h at {fs:g} Hz); "
            f"at most {max_duration_s / 3600:g} h is read: cut it into parts"
        )
    return h


#: Annotation symbols that mark a beat (PhysioNet's beat annotation codes); the
#: others are rhythm, noise or comment marks and are not counted as skipped beats.
BEAT_CODES = frozenset("NLRBAaJSVrFejnE/fQ!?")


@dataclass
class Record:
    """One cleaned single-lead ECG record with its annotations.

    Attributes
    ----------
    name : str
        Record name, e.g. ``"100"``.
    database : str
        ``"mitdb"``, ``"vfdb"`` or ``"upload"``.
    sig : np.ndarray
        Cleaned signal in mV, shape ``(sig_len,)``.
    fs : float
        Sampling rate of ``sig`` in Hz.
    lead : str
        Name of the lead used.
    ann_sample : np.ndarray
        Annotation positions in samples at ``fs``, shape ``(n_ann,)``.
    ann_symbol : list of str
        Annotation symbols.
    ann_aux : list of str
        Annotation aux notes (rhythm labels such as ``"(VF"``).
    comments : list of str
        The header's comment lines (cpsc2018's ``Dx: RBBB`` labels).
    others : dict of str to np.ndarray
        The record's other leads, cleaned, at ``fs``, shape ``(sig_len,)`` each,
        by name (read only when asked: ``record_read(all_leads=True)``).
    valid : tuple of int or None
        ``(start, stop)`` samples of ``sig`` that are signal; outside is padding
        around a lone beat, drawn as blank paper. None: all of it.
    """

    name: str
    database: str
    sig: np.ndarray
    fs: float
    lead: str
    ann_sample: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    ann_symbol: list[str] = field(default_factory=list)
    ann_aux: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    others: dict[str, np.ndarray] = field(default_factory=dict)
    valid: tuple[int, int] | None = None


def dx_labels(comments: list[str]) -> tuple[str, ...]:
    """A record's labels from its header's ``Dx:`` comment lines (cpsc2018's
    ``Dx: RBBB,STD``), in order."""
    return tuple(
        d.strip()
        for c in comments
        if c.strip().lower().startswith("dx:")
        for d in c.split(":", 1)[1].split(",")
        if d.strip()
    )


def signal_clean(sig: np.ndarray, fs: float) -> np.ndarray:
    """Remove baseline wander and high-frequency noise (0.5-40 Hz band-pass).

    Parameters
    ----------
    sig : np.ndarray
        Signal in mV, shape ``(sig_len,)``. NaN samples (lead off) are
        interpolated first.
    fs : float
        Sampling rate in Hz.

    Returns
    -------
    np.ndarray
        Filtered signal in mV, float32, same shape.
    """
    sig = np.asarray(sig, dtype=np.float64)
    bad = ~np.isfinite(sig)
    if bad.all():
        return np.zeros_like(sig, dtype=np.float32)
    if bad.any():
        idx = np.arange(sig.size)
        sig = sig.copy()
        sig[bad] = np.interp(idx[bad], idx[~bad], sig[~bad])
    if sig.size < int(3 * fs):
        # Too short for a 0.5 Hz filter to settle: only remove the mean.
        return (sig - sig.mean()).astype(np.float32)
    hi = min(40.0, 0.45 * fs)
    sos = sps.butter(2, [0.5, hi], btype="bandpass", fs=fs, output="sos")
    return sps.sosfiltfilt(sos, sig).astype(np.float32)


def signal_resample(sig: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """Resample ``sig`` from ``fs_in`` to ``fs_out`` Hz with a polyphase filter."""
    if abs(fs_in - fs_out) < 1e-9:
        return np.asarray(sig, dtype=np.float64)
    from fractions import Fraction

    frac = Fraction(fs_out / fs_in).limit_denominator(1000)
    return sps.resample_poly(sig, frac.numerator, frac.denominator)


def record_raw_read(
    path: str | os.PathLike,
    max_duration_s: float = MAX_RECORD_S,
    *,
    checked: bool = False,
) -> wfdb.Record:
    """Read a WFDB record as it is stored (every signal, mV at its own rate),
    through the one guard every reader of the project uses.

    The header is checked first (:func:`header_check`: rate, signals, length;
    ``checked`` says the caller has done it), then the samples are read as
    stored and summed against each signal's checksum in the header: a header
    that names the wrong format (16-bit samples declared as 212) reads
    garbage, and its sums differ. Then they are converted to mV.

    Raises
    ------
    EcgError
        A header refused, a missing or unreadable file, or a checksum that
        does not match (the message names the signal).
    """
    path = Path(path)
    hea = path.with_name(path.name + ".hea")
    if not checked:
        try:
            with open(hea, "rb") as f:
                head = f.read(MAX_HEADER_BYTES + 1)
        except FileNotFoundError:
            raise EcgError(f"{path}: record not found ({hea})") from None
        except OSError as e:
            raise EcgError(f"{hea}: cannot read ({e.strerror or e})") from None
        header_check(head.decode("latin-1"), str(hea), max_duration_s)
    try:
        rec = wfdb.rdrecord(str(path), physical=False)
        sums = rec.calc_checksum()
        for name, want, got in zip(rec.sig_name or [], rec.checksum or [], sums):
            if want is not None and (int(want) - int(got)) % 65536:
                raise EcgError(
                    f"{path}: signal {name}'s samples do not match the header's "
                    f"checksum ({int(want)} declared, {int(got) % 65536} read): "
                    "the header names the wrong format or the .dat is damaged"
                )
        rec.p_signal = rec.dac()
    except EcgError:
        raise
    except FileNotFoundError as e:
        raise EcgError(f"{path}: record not found ({e.filename or e})") from None
    except Exception as e:  # wfdb raises many kinds on a damaged header or .dat
        raise EcgError(f"{path}: cannot read WFDB record ({e})") from None
    return rec


def record_read(
    path: str | os.PathLike,
    fs: float = FS,
    database: str = "",
    leads: tuple[str, ...] = ("MLII",),
    annotated: bool = True,
    all_leads: bool = False,
) -> Record:
    """Read a WFDB record and its ``atr`` annotations, resampled and cleaned.

    Parameters
    ----------
    path : str or path
        Record path without extension, e.g. ``data/mitdb/100``.
    fs : float
        Target sampling rate in Hz.
    database : str
        Label stored in the result (defaults to the parent folder's name).
    leads : tuple of str
        Lead names in order of preference (a database adapter's ``leads``); the
        first one the record has is read, else its first signal.
    annotated : bool
        Whether the record has ``atr`` annotations to read (cpsc2018 has none:
        its labels are per recording, in the header's comments).
    all_leads : bool
        Also read every other lead into ``Record.others`` (a dataset build's
        extra views of a training patient).

    Raises
    ------
    EcgError
        If the header or signal cannot be read, or the annotation file is missing.
    """
    path = Path(path)
    name = path.name
    rec = record_raw_read(path)  # the header guard, then the checksums
    try:
        ann = wfdb.rdann(str(path), "atr") if annotated else None
    except FileNotFoundError:
        raise EcgError(f"{path}: record has no annotation file ({name}.atr)") from None
    except Exception as e:
        raise EcgError(f"{path}: cannot read annotations ({e})") from None
    if ann is None:  # an empty annotation set
        ann = wfdb.Annotation(name, "atr", np.zeros(0, np.int64), [])
    names = [str(s) for s in (rec.sig_name or [])]
    ch = next((names.index(x) for x in leads if x in names), 0)
    raw = rec.p_signal[:, ch]
    sig = signal_clean(signal_resample(raw, rec.fs, fs), fs)
    others = {}
    if all_leads:
        for j, lead in enumerate(names):
            if j != ch and lead not in others:
                others[lead] = signal_clean(
                    signal_resample(rec.p_signal[:, j], rec.fs, fs), fs
                )
    scale = fs / rec.fs
    sample = np.round(np.asarray(ann.sample) * scale).astype(np.int64)
    aux = [
        (a or "").strip("\x00").strip() for a in (ann.aux_note or [""] * len(sample))
    ]
    return Record(
        name=name,
        database=database or path.parent.name,
        sig=sig,
        fs=fs,
        lead=names[ch] if names else "",
        ann_sample=sample,
        ann_symbol=list(ann.symbol),
        ann_aux=aux,
        comments=[str(c) for c in (rec.comments or [])],
        others=others,
    )


@dataclass
class Beats:
    """Labelled positions in a record.

    ``sample`` has shape ``(n,)`` (samples at the record's ``fs``); ``symbol`` and
    ``label`` are parallel lists; ``skipped`` counts what was left out and why.
    """

    sample: np.ndarray
    symbol: list[str]
    label: list[str]
    skipped: Counter


def beats_extract(
    rec: Record, before: int, after: int, symbols: dict[str, str] | None = None
) -> Beats:
    """Beats of the six classes whose whole window lies inside the record.

    Parameters
    ----------
    rec : Record
        The record (its ``ann_symbol`` are beat labels).
    before, after : int
        Window length before and after the beat, in samples.
    symbols : dict, optional
        Beat code -> class (a database adapter's); default ``BEAT_SYMBOLS``.

    Returns
    -------
    Beats
        Kept beats, and ``skipped`` counts keyed ``"edge"`` or ``"symbol <s>"``.
    """
    symbols = BEAT_SYMBOLS if symbols is None else symbols
    keep_s, keep_sym, keep_lab = [], [], []
    skipped: Counter = Counter()
    n = rec.sig.size
    for s, sym in zip(rec.ann_sample, rec.ann_symbol):
        if sym not in BEAT_CODES:
            continue  # rhythm, signal-quality and comment marks are not beats
        if sym not in symbols:
            skipped[f"symbol {sym}"] += 1
            continue
        if s - before < 0 or s + after > n:
            skipped["edge"] += 1
            continue
        keep_s.append(int(s))
        keep_sym.append(sym)
        keep_lab.append(symbols[sym])
    return Beats(np.asarray(keep_s, dtype=np.int64), keep_sym, keep_lab, skipped)


def episodes_vf(rec: Record) -> list[tuple[int, int]]:
    """Ventricular flutter/fibrillation episodes as ``(start, stop)`` samples.

    A rhythm annotation (``+`` with an aux note) starts a rhythm that lasts until
    the next rhythm annotation or the record's end.
    """
    marks = [
        (int(s), a)
        for s, sym, a in zip(rec.ann_sample, rec.ann_symbol, rec.ann_aux)
        if sym == "+" and a
    ]
    out = []
    for i, (s, a) in enumerate(marks):
        stop = marks[i + 1][0] if i + 1 < len(marks) else rec.sig.size
        if a in VF_RHYTHMS and stop > s:
            out.append((s, stop))
    return out


def episodes_bracketed(rec: Record) -> list[tuple[int, int]]:
    """Flutter/fibrillation episodes marked ``[`` ... ``]`` (cudb), as
    ``(start, stop)`` samples; an episode still open at the end runs to it."""
    out, start = [], None
    for s, sym in zip(rec.ann_sample, rec.ann_symbol):
        if sym == "[" and start is None:
            start = int(s)
        elif sym == "]" and start is not None:
            out.append((start, int(s)))
            start = None
    if start is not None and rec.sig.size > start:
        out.append((start, rec.sig.size))
    return out


def vf_windows(
    rec: Record,
    before: int,
    after: int,
    stride: int,
    episodes: list[tuple[int, int]] | None = None,
) -> np.ndarray:
    """Window centres every ``stride`` samples inside VF episodes, shape ``(n,)``.

    Only centres whose whole window ``[c - before, c + after)`` lies inside one
    episode are kept, so no window mixes VF with another rhythm. ``episodes``
    default to the record's rhythm annotations (:func:`episodes_vf`).
    """
    episodes = episodes_vf(rec) if episodes is None else episodes
    centres = [np.arange(s + before, e - after + 1, stride) for s, e in episodes]
    if not centres:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate(centres).astype(np.int64)


#: Synthetic noise of training pictures (``BuildOptions.noise``): the range of
#: signal-to-noise ratios drawn, dB (RMS of the cleaned signal over RMS of the
#: noise), and the length over which one ratio holds, s.
NOISE_SNR_DB = (-6.0, 12.0)
NOISE_SEGMENT_S = 10.0


def noise_make(sig: np.ndarray, fs: float, key: str, seed: int = 0) -> np.ndarray:
    """Electrode-motion noise for a cleaned signal: the same key and seed, the
    same noise.

    Electrode motion, the MIT-BIH Noise Stress Test Database's hardest kind:
    slow swings (white noise band-passed to 0.5-5 Hz) as large as the QRS
    complexes or larger, which a model that never saw them reads as flutter
    waves. Each ``NOISE_SEGMENT_S`` seconds get their own signal-to-noise ratio
    drawn from ``NOISE_SNR_DB``, changing smoothly between segments. Muscle
    noise (20-40 Hz, tried with it in looks 12-16 of the README) is left out:
    the new-patient figures were the same without it (look 17), and the QRS
    keeps its own shape.

    Parameters
    ----------
    sig : np.ndarray
        Cleaned signal in mV, shape ``(sig_len,)``.
    fs : float
        Sampling rate in Hz.
    key : str
        Names the recording (``"<database>/<record>"``); with ``seed`` it fixes
        the noise, so a picture's noisy signal can be drawn again.
    seed : int
        The build's seed.

    Returns
    -------
    np.ndarray
        Noise in mV, float32, shape ``(sig_len,)``; add it to ``sig``.
    """
    import zlib

    sig = np.asarray(sig, dtype=np.float64)
    n = sig.size
    rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
    sos = sps.butter(
        2, [0.5, min(5.0, 0.45 * fs)], btype="bandpass", fs=fs, output="sos"
    )
    motion = sps.sosfiltfilt(sos, rng.standard_normal(n))
    motion /= max(motion.std(), 1e-12)  # RMS 1
    # One ratio a segment, interpolated between segment centres; so is the
    # signal's own RMS, which the ratio is taken against.
    seg = max(int(NOISE_SEGMENT_S * fs), 1)
    n_seg = -(-n // seg)  # ceil
    centres = (np.arange(n_seg) + 0.5) * seg
    t = np.arange(n)
    snr_db = np.interp(t, centres, rng.uniform(*NOISE_SNR_DB, n_seg))
    rms = np.array([sig[i : i + seg].std() for i in range(0, n, seg)])
    rms = np.interp(t, centres, rms)
    return (motion * rms * 10 ** (-snr_db / 20)).astype(np.float32)


def qrs_detect(sig: np.ndarray, fs: float) -> np.ndarray:
    """QRS complexes of a cleaned signal (wfdb's XQRS), samples, shape ``(n,)``.

    The signal is padded with 0.5 s of flat signal at each end, so a beat at the
    very edge is not lost to the detector's start-up.
    """
    import wfdb.processing

    pad = int(0.5 * fs)
    x = np.asarray(sig, dtype=np.float64)
    xp = np.pad(x, pad, mode="edge") if x.size > 2 * pad else x
    qrs = wfdb.processing.xqrs_detect(xp, fs=fs, verbose=False)
    qrs = np.asarray(qrs, dtype=np.int64) - (pad if xp is not x else 0)
    return qrs[(qrs >= 0) & (qrs < x.size)]


def record_beat_times(path: str | os.PathLike) -> np.ndarray:
    """Times (s) of every annotated beat of a WFDB record (any beat symbol).

    Only the header and the ``atr`` annotations are read, not the signal.
    """
    try:
        fs = float(wfdb.rdheader(str(path)).fs)
        ann = wfdb.rdann(str(path), "atr")
    except FileNotFoundError:
        raise EcgError(f"{path}: record or its annotations not found") from None
    keep = np.array([s in BEAT_CODES for s in ann.symbol], dtype=bool)
    return np.asarray(ann.sample)[keep] / fs


def record_names(db_dir: str | os.PathLike) -> list[str]:
    """Record names in a database folder (from ``RECORDS`` or the ``.hea`` files)."""
    db_dir = Path(db_dir)
    if not db_dir.is_dir():
        raise EcgError(
            f"{db_dir}: data folder not found (set ECG_DATA_DIR or --data-dir)"
        )
    listing = db_dir / "RECORDS"
    if listing.exists():
        names = [ln.strip() for ln in listing.read_text().splitlines() if ln.strip()]
    else:
        names = sorted(p.stem for p in db_dir.glob("*.hea"))
    if not names:
        raise EcgError(f"{db_dir}: no WFDB records (*.hea) found")
    return names


def database_download(
    db: str,
    dl_dir: str | os.PathLike,
    source: str | None = None,
    fetch: Callable[[str, Path], None] | None = None,
) -> None:
    """Download PhysioNet database ``db`` into ``dl_dir / db``.

    ``source`` is its path on PhysioNet (a database adapter's ``physionet``);
    default ``db``. ``fetch(source, folder)``: the adapter's own way (its
    table first, then the records it names); default ``wfdb.dl_database``.

    Raises
    ------
    EcgError
        When PhysioNet cannot be reached (offline) or the download fails.
    """
    try:
        if fetch is not None:
            fetch(source or db, Path(dl_dir) / db)
        else:
            wfdb.dl_database(source or db, str(Path(dl_dir) / db))
    except Exception as e:  # requests' connection errors, HTTP errors, OS errors
        raise EcgError(
            f"cannot download {db} from PhysioNet into {dl_dir}: {type(e).__name__}: "
            f"{str(e).splitlines()[0][:200] if str(e) else 'no details'}"
        ) from None
