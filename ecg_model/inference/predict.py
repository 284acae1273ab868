"""Inference: read any picture safely, draw it the training way, predict.

:class:`Predictor` loads a run folder (``model.keras`` + ``preprocessing.json``)
and applies exactly the training preprocessing: the trace is extracted from
the picture and redrawn by the project's renderer at the model's image size
(see :func:`ecg_model.data.render.image_normalize`). Signals (a WFDB record or a
CSV of millivolts) go clean -> detect QRS -> render each beat -> classify.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..core.classes import CLASSES
from ..core.errors import EcgError
from ..core.io import default_model_dir, json_read
from ..data.pictures import image_read
from ..data.qrs import beat_features, qrs_delineate
from ..data.render import (
    RenderSpec,
    image_normalize,
    outside_blank,
    windows_render,
)
from ..data.signals import (
    FS_RANGE,
    MAX_HEADER_BYTES,
    header_check,
    qrs_detect,
    record_raw_read,
    signal_clean,
    signal_resample,
)
from .block import block_apply, block_notes, block_read, side_measured
from .rhythm import rhythm_read, rhythm_step
from .span import Span, lone_beat_caveat, picture_window, span_model_read
from .strip import picture_kind

if TYPE_CHECKING:
    import pandas as pd

#: Longest signal classified from an upload (CSV or WFDB), s: every beat is
#: drawn and classified, about 1 ms of server time a beat.
MAX_SIGNAL_S = 3600.0
#: Largest amplitude accepted, mV (an ECG stays within a few mV).
MAX_AMPLITUDE_MV = 1e4
#: Below this top probability a prediction is flagged uncertain, for a model
#: without ``calibration.json`` (which sets its own threshold).
UNCERTAIN_BELOW = 0.6
#: Temperature and uncertain threshold fitted on held-out patients
#: (``ecg_model.training.calibrate``), kept beside the model.
CALIBRATION_FILE = "calibration.json"


def probs_temper(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities with the logits divided by ``temperature``, shape kept.

    A softmax output's log is its logits less a constant per row, so this is
    exactly softmax(logits / T); the top class never changes.
    """
    if temperature == 1.0 or len(probs) == 0:
        return np.asarray(probs, dtype=np.float32)
    z = np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-30, 1)) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def model_predict(model, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """Class probabilities ``(n, n_classes)`` for uint8 images ``(n, h, w)``.

    ``model`` is a Keras model or any callable taking a float32 batch
    ``(b, h, w, 1)`` (e.g. the predictor's compiled graph).
    """
    if len(x) == 0:
        return np.zeros((0, len(CLASSES)), np.float32)
    out = []
    for s in range(0, len(x), batch):
        xb = x[s : s + batch].astype(np.float32)[..., None]  # (b, h, w, 1)
        out.append(np.asarray(model(xb)))  # Keras: inference mode outside fit()
    return np.concatenate(out)


@dataclass
class Prediction:
    """One picture's prediction."""

    file: str
    predicted_class: str
    confidence: float
    probabilities: dict[str, float]
    uncertain: bool
    reason: str
    image: np.ndarray  # the model's input, uint8 (h, w)
    span: Span | None = None  # time the picture's trace spans, and how found

    def to_json(self) -> dict:
        return {
            "file": self.file,
            "predicted_class": self.predicted_class,
            "confidence": round(self.confidence, 6),
            "probabilities": {c: round(p, 6) for c, p in self.probabilities.items()},
            "span_s": (
                round(self.span.duration_s, 3)
                if self.span and self.span.duration_s > 0
                else None
            ),
            "span": self.span.describe() if self.span else "",
            "uncertain": self.uncertain,
            "reason": self.reason,
        }


def calibration_read(run_dir: Path) -> tuple[float, float]:
    """A model folder's temperature and uncertainty threshold (1 and
    :data:`UNCERTAIN_BELOW` where it has no calibration).

    Raises
    ------
    EcgError
        The calibration file is damaged (not an object, or a value that is not
        a number in range: temperature 0.05-100, threshold 0-1).
    """
    p = run_dir / CALIBRATION_FILE
    cal = json_read(p) if p.exists() else {}
    t, u = (
        cal.get(k) if isinstance(cal, dict) else None
        for k in ("temperature", "uncertain_below")
    )
    t = 1.0 if t is None else t
    u = UNCERTAIN_BELOW if u is None else u
    num = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (t, u))
    if not isinstance(cal, dict) or not num or not (0.05 <= t <= 100 and 0 <= u <= 1):
        raise EcgError(f"{p}: damaged (temperature 0.05-100, uncertain_below 0-1)")
    return float(t), float(u)


#: How a picture may be read (:meth:`Predictor.picture_read_as`).
#: A run's lone-beat model, where it has one (:class:`Predictor`).
LONE_DIR = "lone"

PICTURE_READS = ("detect", "beat", "strip", "page")


class Predictor:
    """A trained model with its preprocessing, loaded from a run folder.

    Parameters
    ----------
    run_dir : path, optional
        Folder with ``model.keras`` and ``preprocessing.json``; default
        ``artifacts/default``.
    """

    def __init__(self, run_dir: str | os.PathLike | None = None) -> None:
        self.run_dir = Path(run_dir) if run_dir else default_model_dir()
        for f in ("model.keras", "preprocessing.json"):
            if not (self.run_dir / f).exists():
                raise EcgError(f"{self.run_dir}: not a model folder ({f} is missing)")
        pre = json_read(self.run_dir / "preprocessing.json")
        if not isinstance(pre, dict) or list(pre.get("classes", [])) != list(CLASSES):
            raise EcgError(
                f"{self.run_dir / 'preprocessing.json'}: class list differs "
                f"from this package's: "
                f"{pre.get('classes') if isinstance(pre, dict) else pre!r}"
            )
        try:
            self.spec = RenderSpec.from_json(pre)
        except (TypeError, ValueError) as e:
            raise EcgError(
                f"{self.run_dir / 'preprocessing.json'}: damaged ({e})"
            ) from None
        self.classes = CLASSES
        # Beats of a signal also get the rhythm step when the run has one.
        rhythm = rhythm_read(self.run_dir) or {}
        self.pac_ratio_threshold = rhythm.get("pac_ratio_threshold")
        self.irregular_max = rhythm.get("irregular_max")
        self.rhythm_stage = rhythm.get("stage")
        # Beats of a signal get the block stage (which conduction a beat
        # called conducted has, from its measured QRS) where the run has one.
        self.block_stage = block_read(self.run_dir)
        # A lone beat's span read from its shape where the run has a span model.
        self.span_model = span_model_read(self.run_dir)
        # Probabilities calibrated on held-out patients where the run has it.
        self.temperature, self.uncertain_below = calibration_read(self.run_dir)
        import keras

        try:
            self.model = keras.saving.load_model(
                self.run_dir / "model.keras", compile=False
            )
        except Exception as e:
            raise EcgError(
                f"{self.run_dir / 'model.keras'}: cannot load model ({e})"
            ) from None
        # A picture of one beat of unknown span goes to the lone-beat model
        # where the run has one (its lone/ folder, trained on thumbnails of
        # 0.4-1.2 s): it needs no time scale, which one beat without a grid
        # does not give.
        self.lone: Predictor | None = None
        if self.spec.view == "window" and (self.run_dir / LONE_DIR).is_dir():
            lone = Predictor(self.run_dir / LONE_DIR)
            if lone.spec.view != "thumbnail":
                raise EcgError(
                    f"{self.run_dir / LONE_DIR}: not a lone-beat model (its "
                    f"preprocessing.json draws view {lone.spec.view!r})"
                )
            self.lone = lone

    def predict_arrays(self, images: np.ndarray) -> np.ndarray:
        """Probabilities ``(n, 6)`` for model-ready uint8 images ``(n, h, w)``."""
        return probs_temper(model_predict(self._graph_call(), images), self.temperature)

    def _graph_call(self):
        """The model as one compiled graph (an eager Keras call costs ~10 ms)."""
        if getattr(self, "_graph", None) is None:
            import tensorflow as tf

            spec = tf.TensorSpec(
                [None, self.spec.image_height, self.spec.image_width, 1], tf.float32
            )
            model = self.model
            self._graph = tf.function(
                lambda x, training=False: model(x, training=False),
                input_signature=[spec],
            )
        return self._graph

    def predict_picture(
        self, picture: np.ndarray, name: str = "", duration_s: float | None = None
    ) -> Prediction:
        """Predict one decoded picture (any size, RGB or gray uint8).

        ``duration_s``: the time the picture's trace spans, s, where known;
        otherwise it is read from an ECG-paper grid or estimated
        (:mod:`ecg_model.inference.span`).

        Raises
        ------
        EcgError
            The picture holds no trace at all (blank, noise, a photo, a filled
            shape): there is nothing to classify. A poor trace (short, broken)
            is classified and flagged uncertain.
        """
        if self.spec.view == "thumbnail":  # a lone-beat model asked directly
            img, q = image_normalize(picture, self.spec)
            span = Span(0.0, "lone", beats=1)
        else:
            img, q, span = picture_window(
                picture, self.spec, duration_s, self.span_model
            )
        if not q.found:
            raise EcgError(f"{name or 'picture'}: {q.reason}")
        if self.lone is not None and span.source in ("one beat", "shape"):
            lone = self.lone.predict_picture(picture, name)
            return replace(lone, span=replace(span, source="lone", duration_s=0.0))
        p = self.predict_arrays(img[None])[0]
        k = int(p.argmax())
        reason = ""
        lone = lone_beat_caveat(CLASSES[k], span)
        if not q.looks_like_ecg:
            reason = q.reason or "does not look like an ECG trace"
        elif lone:  # not offered as a confident answer, whatever its probability
            reason = lone
        elif p[k] < self.uncertain_below:
            reason = (
                f"probability {p[k]:.2f} is below {self.uncertain_below:.2f}, "
                "where answers on new patients were often wrong"
            )
        return Prediction(
            name,
            CLASSES[k],
            float(p[k]),
            {c: float(v) for c, v in zip(CLASSES, p)},
            bool(reason),
            reason,
            img,
            span,
        )

    def picture_read_as(
        self, picture: np.ndarray, name: str = "", how: str = "detect"
    ) -> tuple[str, str]:
        """How to read a picture, the one decision for the CLI and the pages:
        ``("page", "")``, ``("strip", "")`` or ``("beat", warning)``.

        ``how``: ``"detect"`` (a 12-lead page or a strip when it looks like
        one: :func:`~ecg_model.inference.strip.picture_kind`), ``"beat"``,
        ``"strip"`` or ``"page"`` (forced). A picture forced to one beat that
        looks like a strip or a page gets a warning: squeezed into one beat's
        window, its answer means little.
        """
        if how not in PICTURE_READS:
            raise EcgError(f"how must be one of {', '.join(PICTURE_READS)}")
        if how in ("strip", "page"):
            return how, ""
        looks = picture_kind(picture)
        if how == "detect" and looks in ("strip", "page"):
            return looks, ""
        warning = ""
        if looks == "page":
            warning = (
                f"{name or 'picture'} looks like a 12-lead page; read as a single "
                "beat, its answer means little: read it as a page"
            )
        elif looks == "strip":
            warning = (
                f"{name or 'picture'} looks like a rhythm strip with several "
                "beats; read as a single beat, it is squeezed into one beat's "
                "window and its answer means little: read it as a strip"
            )
        return "beat", warning

    def predict_file(
        self,
        src: str | os.PathLike | bytes,
        name: str | None = None,
        duration_s: float | None = None,
    ) -> Prediction:
        """Read and predict one picture (path or bytes); EcgError if unreadable."""
        label = name or (str(src) if not isinstance(src, bytes) else "upload")
        return self.predict_picture(image_read(src, label), label, duration_s)

    def predict_signal(
        self,
        sig: np.ndarray,
        fs: float,
        others: dict[str, np.ndarray] | None = None,
        lead: str = "",
    ) -> BeatTable:
        """Classify every beat of a raw signal (mV at ``fs`` Hz): ``sig`` is
        the lead the beats are read on (named ``lead``), ``others`` the
        record's other leads by name, measured for the block stage."""
        return signal_beats_classify(self, sig, fs, others, lead)


@dataclass
class BeatTable:
    """Per-beat results of a signal: ``sample`` at the signal's own ``fs``."""

    fs: float
    sig: np.ndarray  # cleaned signal at the model's rate, mV
    sig_fs: float
    sample: np.ndarray
    time_s: np.ndarray
    probabilities: np.ndarray  # (n_beats, 6)
    # Each beat's measured QRS (data.qrs.qrs_delineate): onset and offset, s
    # on sig's time axis, and duration, ms; NaN where not measured.
    qrs_on_s: np.ndarray | None = None
    qrs_off_s: np.ndarray | None = None
    qrs_ms: np.ndarray | None = None
    # The block stage's Normal / LBBB / RBBB probabilities (NaN where it did
    # not answer), shape (n_beats, 3); what the measures say, in words; and
    # the leads that were measured.
    block_q: np.ndarray | None = None
    notes: list[str] | None = None
    leads: tuple[str, ...] = ()

    @property
    def sig_time_s(self) -> np.ndarray:
        """Time of each sample of ``sig``, seconds, shape ``(n,)``."""
        return np.arange(self.sig.size) / self.sig_fs

    @property
    def predicted(self) -> list[str]:
        return [CLASSES[k] for k in self.probabilities.argmax(axis=1)]

    @property
    def confidence(self) -> np.ndarray:
        return (
            self.probabilities.max(axis=1) if len(self.probabilities) else np.zeros(0)
        )


def signal_beats_classify(
    predictor: Predictor,
    sig: np.ndarray,
    fs: float,
    others: dict[str, np.ndarray] | None = None,
    lead: str = "",
) -> BeatTable:
    """Clean -> resample -> detect QRS -> render each beat -> classify ->
    measure -> block stage.

    ``others``: the record's other leads (mV at ``fs``, each as long as
    ``sig``), measured with ``sig`` where the block stage reads them (V1, V6,
    I); the beats are found and drawn on ``sig`` alone.

    Raises
    ------
    EcgError
        If the signal is too short or no beat is found.
    """
    spec = predictor.spec
    sig = np.asarray(sig, dtype=np.float64)
    if not FS_RANGE[0] <= fs <= FS_RANGE[1]:
        raise EcgError(
            f"sampling rate {fs:g} Hz is outside {FS_RANGE[0]:g}-{FS_RANGE[1]:g} Hz"
        )
    if sig.ndim != 1 or sig.size < 2 * fs:
        raise EcgError(
            f"signal too short: {sig.size} samples at {fs:g} Hz; at least 2 s needed"
        )
    if sig.size / fs > MAX_SIGNAL_S:
        raise EcgError(
            f"signal too long: {sig.size / fs / 60:.0f} min at {fs:g} Hz; at most "
            f"{MAX_SIGNAL_S / 60:.0f} min is classified at once: cut it into parts"
        )
    finite = np.isfinite(sig)
    if not finite.any():
        raise EcgError("signal holds no numbers")
    peak = float(np.abs(sig[finite]).max())
    if peak > MAX_AMPLITUDE_MV:
        raise EcgError(
            f"amplitude out of range: {peak:.3g} mV (an ECG is a few mV; "
            "give the signal in millivolts)"
        )
    # 1. clean at the model's rate.
    x = signal_clean(signal_resample(sig, fs, spec.fs), spec.fs)
    # 2. detect QRS complexes (wfdb's XQRS) on the cleaned signal.
    qrs = qrs_detect(x, spec.fs)
    if qrs.size == 0:
        raise EcgError("no beats found in the signal")
    # 3. render each beat's window; where it leaves the signal, the paper is blank.
    pad = np.pad(x, (spec.before, spec.after), mode="edge")
    imgs = windows_render(pad, qrs + spec.before, spec)  # (n_beats, h, w)
    imgs = outside_blank(imgs, qrs, x.size, spec)
    # 4. classify by picture, then by rhythm: a beat that looks normal but comes
    #    early against its neighbours is a PAC (see ecg_model.inference.rhythm).
    probs = rhythm_step(predictor, predictor.predict_arrays(imgs), qrs / spec.fs)
    # 5. measure each beat's QRS, what a cardiologist reads a block by: its
    #    duration on this lead, its shape on every lead the signal has.
    on, off, ms = qrs_delineate(x, spec.fs, qrs)
    leads = {lead or "main": x}
    for name, s in (others or {}).items():
        s = np.asarray(s, dtype=np.float64)
        if s.shape == sig.shape and np.isfinite(s).any() and name not in leads:
            leads[name] = signal_clean(signal_resample(s, fs, spec.fs), spec.fs)
    feats = beat_features(leads, spec.fs, qrs, lead or "main", (on, off, ms))
    # 6. the block stage divides a conducted beat's probability between
    #    Normal, LBBB and RBBB as the measures say (ecg_model.inference.block).
    probs, q = block_apply(probs, feats, getattr(predictor, "block_stage", None))
    # Whether the signal has a lead that tells a block's side (an edge beat
    # may lack its measures where the signal has the lead).
    side = bool(side_measured(feats).any())
    return BeatTable(
        fs=fs,
        sig=x,
        sig_fs=spec.fs,
        sample=np.round(qrs * fs / spec.fs).astype(np.int64),
        time_s=qrs / spec.fs,
        probabilities=probs,
        qrs_on_s=on / spec.fs,
        qrs_off_s=off / spec.fs,
        qrs_ms=ms,
        block_q=q,
        notes=block_notes(
            q, ms, [CLASSES[k] for k in probs.argmax(axis=1)], np.full(qrs.size, side)
        ),
        leads=tuple(leads),
    )


#: Header names of a time column, lower case.
TIME_NAMES = ("time", "t", "s", "sec", "secs", "seconds", "time_s", "time (s)", "ms")


def csv_signal_read(
    src: str | os.PathLike | bytes,
    name: str | None = None,
    fs: float | None = None,
) -> np.ndarray:
    """A CSV of one lead -> its samples, mV, shape ``(n,)``.

    Accepted: one column of millivolts, or two columns, time and millivolts;
    either with or without a header row, split by commas, semicolons or tabs.
    A time column is recognised by its header name (``time``, ``t``, ``s``,
    ``ms``, ...) or by values that rise in equal steps; when ``fs`` (Hz) is
    given, the rate the time column implies must agree with it.

    Raises
    ------
    EcgError
        Not text, no numbers, a cell that is not a number, several signal
        columns or two columns without a time column (the message names them),
        or a time column whose rate is not ``fs``.
    """
    label = name or (str(src) if not isinstance(src, bytes) else "upload")
    try:
        text = (src if isinstance(src, bytes) else Path(src).read_bytes()).decode(
            "utf-8-sig"
        )
    except FileNotFoundError:
        raise EcgError(f"{label}: file not found") from None
    except UnicodeDecodeError:
        raise EcgError(f"{label}: not a text CSV file") from None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise EcgError(f"{label}: no numbers in the CSV")
    sep = next((c for c in ("\t", ";", ",") if c in lines[0]), ",")
    rows = [[c.strip() for c in ln.split(sep)] for ln in lines]

    def number(cell: str) -> float | None:
        try:
            return float(cell)
        except ValueError:
            return None

    header = [] if all(number(c) is not None for c in rows[0]) else rows.pop(0)
    if not rows:
        raise EcgError(f"{label}: no numbers in the CSV")
    n_col = len(rows[0])
    skip = 1 + bool(header)  # line numbers as the user's editor counts them
    if len(header) != n_col:
        header = [f"column {j + 1}" for j in range(n_col)]
    names = header
    vals = np.full((len(rows), n_col), np.nan)
    for i, r in enumerate(rows):
        if len(r) != n_col:
            raise EcgError(
                f"{label}: line {i + skip} has {len(r)} columns, the first has {n_col}"
            )
        for j, cell in enumerate(r):
            v = number(cell)
            if v is None:
                raise EcgError(
                    f"{label}: line {i + skip} is not a number: {cell[:40]!r}"
                ) from None
            vals[i, j] = v
    if n_col == 1:
        return vals[:, 0]
    named = [str(c).lower() for c in names]
    steps = np.diff(vals[:, 0])
    even = steps.size > 1 and np.all(steps > 0) and np.ptp(steps) <= 0.01 * steps.mean()
    if n_col == 2 and (named[0] in TIME_NAMES or even):
        if fs and steps.size and np.all(steps > 0):
            unit = 1000.0 if named[0] == "ms" else 1.0
            implied = unit / float(np.median(steps))
            if abs(implied / fs - 1) > 0.02:
                raise EcgError(
                    f"{label}: its time column ({names[0]}) implies "
                    f"{implied:.4g} Hz, not the {fs:g} Hz given"
                )
        return vals[:, 1]
    raise EcgError(
        f"{label}: {n_col} columns ({', '.join(map(str, names))}); give one "
        "column of millivolts, or two: time and millivolts"
    )


def record_leads(rec) -> tuple[np.ndarray, float, str, dict[str, np.ndarray]]:
    """A raw WFDB record's (``wfdb.Record``, mV) lead to read beats on, and
    the rest.

    Returns the lead (MLII, else II, else the first signal; mV, shape
    ``(sig_len,)``), the rate (Hz), its name, and every other lead by name.
    """
    names = [str(s) for s in rec.sig_name or []]
    if rec.p_signal is None or rec.p_signal.shape[0] == 0:
        raise EcgError(f"{rec.record_name}: the record holds no samples")
    ch = next((names.index(x) for x in ("MLII", "II") if x in names), 0)
    others = {
        n: rec.p_signal[:, j].astype(np.float64) for j, n in enumerate(names) if j != ch
    }
    lead = names[ch] if names else ""
    return rec.p_signal[:, ch].astype(np.float64), float(rec.fs), lead, others


def wfdb_upload_read(
    files: dict[str, bytes],
) -> tuple[np.ndarray, float, str, dict[str, np.ndarray]]:
    """Read an uploaded WFDB record (``.hea`` + signal files) from memory.

    The files are written to a private temporary folder under names chosen here
    (never the uploaded names); the header is rewritten to point at them.

    Returns
    -------
    sig : np.ndarray
        Lead MLII (or II) where present, else the first signal, mV, shape
        ``(sig_len,)``.
    fs : float
        Sampling rate, Hz.
    lead : str
        The lead's name.
    others : dict
        Every other lead by name, mV, each shape ``(sig_len,)``.
    """
    import tempfile

    heads = [n for n in files if n.lower().endswith(".hea")]
    if len(heads) != 1:
        raise EcgError(
            "a WFDB record needs exactly one .hea header beside its .dat file"
            f" (got: {', '.join(sorted(files)) or 'nothing'})"
        )
    head_name = heads[0]
    try:
        text = files[head_name][: MAX_HEADER_BYTES + 1].decode("ascii")
    except UnicodeDecodeError:
        raise EcgError(f"{head_name}: not a WFDB header (not text)") from None
    # Rate, signals and length are checked before a sample is read.
    n_sig = header_check(text, head_name, MAX_SIGNAL_S).n_sig
    lines = text.splitlines()
    body = [i for i, ln in enumerate(lines) if ln.strip() and not ln.startswith("#")]
    first = lines[body[0]].split()
    sig_lines = body[1 : 1 + n_sig]
    wanted = {lines[i].split()[0] for i in sig_lines if lines[i].split()}
    missing = sorted(w for w in wanted if w not in files)
    if missing:
        raise EcgError(
            f"{head_name}: signal file {', '.join(missing)} not uploaded "
            "(upload the .hea and its .dat together)"
        )
    rename = {w: f"signal{k}.dat" for k, w in enumerate(sorted(wanted))}
    lines[body[0]] = " ".join(["upload", *first[1:]])
    for i in sig_lines:
        parts = lines[i].split()
        lines[i] = " ".join([rename[parts[0]], *parts[1:]])
    with tempfile.TemporaryDirectory(prefix="ecg-upload-") as tmp:
        (Path(tmp) / "upload.hea").write_text("\n".join(lines) + "\n")
        for orig, new in rename.items():
            (Path(tmp) / new).write_bytes(files[orig])
        try:
            rec = record_raw_read(Path(tmp) / "upload", checked=True)
        except EcgError as e:  # named by the uploaded header, not the folder
            raise EcgError(
                str(e).replace(str(Path(tmp) / "upload"), head_name)
            ) from None
    if rec.p_signal is None or rec.p_signal.shape[0] == 0:
        raise EcgError(f"{head_name}: the record holds no samples")
    return record_leads(rec)


def predictions_frame(preds: list[Prediction]) -> pd.DataFrame:
    """One row per picture: file, class, confidence, uncertain, six probabilities,
    and the time span the picture was read as (s)."""
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "file": p.file,
                "predicted_class": p.predicted_class,
                "confidence": round(p.confidence, 4),
                "uncertain": p.uncertain,
                **{c: round(p.probabilities[c], 4) for c in CLASSES},
                "span_s": (
                    round(p.span.duration_s, 3)
                    if p.span and p.span.duration_s > 0
                    else None
                ),
            }
            for p in preds
        ],
        columns=[
            "file",
            "predicted_class",
            "confidence",
            "uncertain",
            *CLASSES,
            "span_s",
        ],
    )


def beats_frame(table: BeatTable) -> pd.DataFrame:
    """One row per beat: number, sample, time, class, confidence, measured QRS
    (ms, empty where not measured), six probabilities, and what the measures
    say of the beat in words (``note``; empty where nothing)."""
    import pandas as pd

    df = pd.DataFrame(table.probabilities.round(4), columns=list(CLASSES))
    if table.qrs_ms is not None:
        df.insert(0, "qrs_ms", np.round(table.qrs_ms, 0))
    df.insert(0, "confidence", table.confidence.round(4))
    df.insert(0, "predicted_class", table.predicted)
    df.insert(0, "time_s", np.round(table.time_s, 3))
    df.insert(0, "sample", table.sample)
    df.insert(0, "beat", np.arange(1, len(df) + 1))
    if table.notes is not None:
        df["note"] = table.notes
    return df


def class_counts(classes: list[str]) -> dict[str, int]:
    """How many of each class, in class order (zeros included)."""
    return {c: int(sum(1 for k in classes if k == c)) for c in CLASSES}
