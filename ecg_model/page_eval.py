"""Scoring the page reader as the PhysioNet/CinC Challenge 2024 scored
digitisation, and exporting what it read.

:func:`page_evaluate` reads a folder of printouts whose source records lie
beside them (as ``../shared/data/ecg-images-cpsc2018/``: ``A0002-0.png`` drawn
from ``A0002.hea``/``.dat``) and reports, per page and summed up:

- pages read (not refused);
- per-lead SNR (:func:`~ecg_model.strip_eval.snr_db`: best shift, then signal
  power over error power) of each panel against the record's same samples;
- lead names: where the page's annotation JSON is there (the generator's lead
  boxes), the share of panels whose name is the name of the box they lie in;
- the rhythm strip's beats against the beats the beat path finds on the
  record itself (lead II, every other lead measured, as ``predict-record``
  reads it; Se, PPV, within 150 ms), and on matched beats the class agreement
  with that path; where the recording's label gives every beat's class
  (cpsc2018's rule: one of Normal, LBBB, RBBB, no ectopy), both paths'
  accuracy on those beats;
- the block decision from every lead, and from lead II alone, against the
  record's label (LBBB, RBBB or neither).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from .core.errors import EcgError
from .core.io import atomic_write_bytes
from .data.databases.cpsc2018 import CPSC2018
from .data.pages import PAGE_S
from .data.pictures import image_read
from .data.signals import dx_labels
from .inference.block import block_decide
from .inference.page import PageResult, PageScan, page_analyze
from .strip_eval import match_beats, snr_db

#: Largest time shift searched when a lead is scored, s.
SNR_SHIFT_S = 0.2
#: Images read as pages.
PAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def page_export(
    scan: PageScan, out: str | os.PathLike, name: str = "page"
) -> list[Path]:
    """Write a page's twelve leads as a WFDB record (``name.hea`` + ``.dat``,
    leads named as printed, samples outside a lead's panel NaN) and as
    ``name.csv`` (a time column, then one column a lead, empty outside its
    panel). Returns the files written."""
    import wfdb

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = list(scan.signals)
    sig = np.stack([scan.signals[n] for n in names], axis=1)  # (n, 12) mV
    # Written into a private folder, then moved: never half a record.
    tmp = out / f".{name}.{os.getpid()}.tmp"
    tmp.mkdir(exist_ok=True)
    try:
        wfdb.wrsamp(
            name,
            fs=scan.fs,
            units=["mV"] * len(names),
            sig_name=names,
            p_signal=sig,
            fmt=["16"] * len(names),
            adc_gain=[1000.0] * len(names),
            baseline=[0] * len(names),
            write_dir=str(tmp),
            comments=[f"digitised from a 12-lead page, layout {scan.layout}"],
        )
        paths = []
        for ext in ("hea", "dat"):
            os.replace(tmp / f"{name}.{ext}", out / f"{name}.{ext}")
            paths.append(out / f"{name}.{ext}")
    finally:
        for p in tmp.iterdir():
            p.unlink()
        tmp.rmdir()
    df = pd.DataFrame(sig.round(4), columns=names)
    df.insert(0, "time_s", np.round(np.arange(len(df)) / scan.fs, 4))
    atomic_write_bytes(out / f"{name}.csv", df.to_csv(index=False).encode())
    return [*paths, out / f"{name}.csv"]


def page_export_bytes(scan: PageScan, name: str = "page") -> tuple[bytes, bytes]:
    """A page's leads as downloads: a ZIP of the WFDB record (``.hea`` +
    ``.dat``) and the CSV (see :func:`page_export`)."""
    import tempfile
    import zipfile

    with tempfile.TemporaryDirectory() as tmp:
        files = page_export(scan, tmp, name)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for p in files:
                if p.suffix in (".hea", ".dat"):
                    z.write(p, p.name)
        return buf.getvalue(), (Path(tmp) / f"{name}.csv").read_bytes()


def record_block(comments: list[str]) -> str:
    """A record's conduction from its ``#Dx`` labels: LBBB, RBBB or none."""
    labels = set(dx_labels(comments))
    if "LBBB" in labels:
        return "LBBB"
    if "RBBB" in labels:
        return "RBBB"
    return "none"


def _box_names(ann: dict, scan: PageScan, shape: tuple[int, int]) -> list[bool]:
    """For each panel, whether its name is the name of the generator's lead
    box its centre lies in (the centre mapped back through the straightening)."""
    h, w = shape
    a = np.deg2rad(scan.angle_deg)
    right = []
    for ld in scan.leads:
        cx, cy = (ld.box[0] + ld.box[2]) / 2, (ld.box[1] + ld.box[3]) / 2
        # PIL rotated the page counter-clockwise by angle about its centre;
        # undo that on the point (y grows downwards).
        dx, dy = cx - w / 2, cy - h / 2
        ox = w / 2 + dx * np.cos(a) - dy * np.sin(a)
        oy = h / 2 + dx * np.sin(a) + dy * np.cos(a)
        hit = ""
        for b in ann["leads"]:
            pts = np.array(list(b["lead_bounding_box"].values()), float)  # (4, [y, x])
            if (
                pts[:, 1].min() <= ox <= pts[:, 1].max()
                and pts[:, 0].min() <= oy <= pts[:, 0].max()
            ):
                # Boxes overlap (a tall QRS's box reaches the next row, the
                # rhythm strip's spans the page): the lead whose drawn trace's
                # median row (its baseline) and box centre are nearest wins.
                drawn = np.asarray(b.get("plotted_pixels") or pts, float)
                d = abs(float(np.median(drawn[:, 0])) - oy)
                d += abs(pts[:, 1].mean() - ox) / 4
                if not hit or d < hit[1]:
                    hit = (b["lead_name"], d)
        right.append(bool(hit) and hit[0] == ld.name)
    return right


def page_score(
    res: PageResult, rec, predictor, ann: dict | None, shape: tuple[int, int]
) -> dict:
    """One page's figures against its source record (see the module)."""
    scan = res.scan
    n = int(round(PAGE_S * rec.fs))
    ref = {nm: rec.p_signal[:n, i] for i, nm in enumerate(rec.sig_name)}
    t_ref = np.arange(n) / rec.fs
    t_page = np.arange(int(round(PAGE_S * scan.fs))) / scan.fs
    snr = {}
    for ld in scan.leads:
        est = scan.strips[ld.name] if ld.rhythm else scan.signals[ld.name]
        if ld.name not in ref:
            continue
        sel = (t_page >= ld.t0_s) & (t_page < ld.t1_s) & np.isfinite(est)
        if sel.sum() < scan.fs * 0.5:
            continue
        r = np.interp(t_page[sel], t_ref, ref[ld.name])
        key = f"{ld.name} (rhythm)" if ld.rhythm else ld.name
        snr[key] = round(snr_db(r, est[sel], scan.fs, SNR_SHIFT_S), 2)
    # The beat path on the record itself (as predict-record reads it: lead II
    # with every other lead measured): the beats to find, and the classes the
    # page's beats are compared with.
    truth = predictor.predict_signal(
        ref["II"], rec.fs, {k: v for k, v in ref.items() if k != "II"}, "II"
    )
    pairs = match_beats(truth.time_s, res.table.time_s)
    same = [truth.predicted[i] == res.classes[j] for i, j in pairs]
    # Where the recording's label gives every beat's class (cpsc2018's rule:
    # one of Normal, LBBB, RBBB and no ectopy), both paths' accuracy on the
    # matched beats.
    named, _ = CPSC2018.recording_class(dx_labels(rec.comments or []))
    cls = CPSC2018.recording_classes[named] if named else ""
    right_page = sum(res.classes[j] == cls for _, j in pairs) if cls else 0
    right_rec = sum(truth.predicted[i] == cls for i, _ in pairs) if cls else 0
    # Block from lead II alone: the rhythm strip without the other leads.
    lead, sig = scan.rhythm
    alone = predictor.predict_signal(sig, scan.fs, None, lead)
    q2 = alone.block_q
    d2 = (
        block_decide(alone.predicted, q2, alone.qrs_ms, alone.leads)
        if q2 is not None
        else {"block": None}
    )
    out = {
        "layout": scan.layout,
        "snr_db": snr,
        "median_snr_db": round(float(np.median(list(snr.values()))), 2)
        if snr
        else None,
        "beats_true": int(len(truth.time_s)),
        "beats_found": int(len(res.table.time_s)),
        "beats_matched": len(pairs),
        "classes_same": int(sum(same)),
        "beats_labelled": len(pairs) if cls else 0,
        "right_page": int(right_page),
        "right_record": int(right_rec),
        "block_truth": record_block(rec.comments or []),
        "block_all_leads": res.block.get("block") or "none",
        "block_lead_ii": d2.get("block") or "none",
    }
    if ann is not None:
        names = _box_names(ann, scan, shape)
        out["names_right"], out["panels"] = int(sum(names)), len(names)
    return out


def _block_figures(df: pd.DataFrame, col: str) -> dict:
    """LBBB and RBBB recall and precision of one decision column over pages."""
    out = {}
    for b in ("LBBB", "RBBB"):
        tp = int(((df.block_truth == b) & (df[col] == b)).sum())
        out[b] = {
            "recall": round(tp / max(int((df.block_truth == b).sum()), 1), 4),
            "precision": round(tp / max(int((df[col] == b).sum()), 1), 4),
            "pages": int((df.block_truth == b).sum()),
            "called": int((df[col] == b).sum()),
        }
    return out


def page_evaluate(
    folder: str | os.PathLike,
    predictor,
    limit: int = 0,
    test_records: tuple[str, ...] = (),
    progress: Callable[[str], None] = lambda msg: None,
) -> dict:
    """Read every page of ``folder`` whose source record lies beside it and
    score it (see the module). ``test_records``: records of patients outside
    the model's training, whose block decisions are also scored apart."""
    import wfdb

    folder = Path(folder)
    cats = {}
    if (folder / "images.csv").exists():
        meta = pd.read_csv(folder / "images.csv", dtype=str)
        cats = dict(zip(meta["file"], meta["category"]))
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in PAGE_SUFFIXES)
    files = [p for p in files if (folder / f"{p.stem.split('-')[0]}.hea").exists()]
    if not files:
        raise EcgError(f"{folder}: no page with its source record beside it")
    rows = []
    for k, p in enumerate(files[: limit or None]):
        rn = p.stem.split("-")[0]
        row = {"page": p.name, "record": rn, "category": cats.get(p.name, "")}
        t0 = time.perf_counter()
        try:
            pic = image_read(p, p.name)
            res = page_analyze(pic, predictor, p.name)
        except EcgError as e:
            row.update(read=False, why=str(e))
            rows.append(row)
            progress(f"{p.name}: refused ({e})")
            continue
        row["seconds"] = round(time.perf_counter() - t0, 2)
        ann_p = folder / f"{p.stem}.json.gz"
        ann = json.loads(gzip.open(ann_p).read()) if ann_p.exists() else None
        rec = wfdb.rdrecord(str(folder / rn))
        row.update(read=True, **page_score(res, rec, predictor, ann, pic.shape[:2]))
        rows.append(row)
        progress(
            f"[{k + 1}/{len(files)}] {p.name}: {row['layout']}, median SNR "
            f"{row['median_snr_db']} dB, {row['beats_matched']}/{row['beats_true']} "
            f"beats, block {row['block_all_leads']} ({row['block_truth']})"
        )
    return page_summary(rows, test_records)


def page_summary(rows: list[dict], test_records: tuple[str, ...] = ()) -> dict:
    """The per-page rows summed up: overall and per appearance category."""
    df = pd.DataFrame(rows)
    read = df[df["read"]] if "read" in df else df.iloc[:0]

    def figures(part: pd.DataFrame, all_part: pd.DataFrame) -> dict:
        snrs = [v for d in part.get("snr_db", []) for v in d.values()]
        out = {
            "pages": int(len(all_part)),
            "read": round(float(len(part) / max(len(all_part), 1)), 4),
            "median_snr_db": round(float(np.median(snrs)), 2) if snrs else None,
        }
        if len(part):
            out["beat_se"] = round(
                float(part.beats_matched.sum() / max(part.beats_true.sum(), 1)), 4
            )
            out["beat_ppv"] = round(
                float(part.beats_matched.sum() / max(part.beats_found.sum(), 1)), 4
            )
            out["class_agreement"] = round(
                float(part.classes_same.sum() / max(part.beats_matched.sum(), 1)), 4
            )
            if "beats_labelled" in part and part.beats_labelled.sum():
                n = max(int(part.beats_labelled.sum()), 1)
                out["accuracy_page"] = round(float(part.right_page.sum() / n), 4)
                out["accuracy_record"] = round(float(part.right_record.sum() / n), 4)
                out["beats_labelled"] = int(part.beats_labelled.sum())
            out["seconds_median"] = round(float(part.seconds.median()), 2)
            if "panels" in part and part["panels"].notna().any():
                out["names_right"] = round(
                    float(part.names_right.sum() / max(part.panels.sum(), 1)), 4
                )
        return out

    res = {"overall": figures(read, df), "by_category": {}}
    for cat, g in df.groupby("category"):
        if cat:
            res["by_category"][cat] = figures(g[g["read"]], g)
    if len(read):
        res["block"] = {
            "all pages": {
                "all leads": _block_figures(read, "block_all_leads"),
                "lead II alone": _block_figures(read, "block_lead_ii"),
            }
        }
        test = read[read.record.isin(test_records)]
        if len(test):
            res["block"]["test patients"] = {
                "pages": int(len(test)),
                "all leads": _block_figures(test, "block_all_leads"),
                "lead II alone": _block_figures(test, "block_lead_ii"),
            }
    res["pages"] = rows
    return res


def page_table(res: dict) -> str:
    """The summary as a Markdown table: overall, then each category."""
    head = (
        "| pages | n | read | median SNR dB | lead names right | beat Se | "
        "beat PPV | class agreement | accuracy: page / record (beats) | "
        "s a page |\n|---|---|---|---|---|---|---|---|---|---|"
    )

    def cell(v, pct=False):
        if v is None:
            return "-"
        return f"{100 * v:.1f}%" if pct else f"{v:g}"

    lines = [head]
    for name, f in [("all", res["overall"]), *res["by_category"].items()]:
        lines.append(
            f"| {name} | {f['pages']} | {cell(f['read'], True)} | "
            f"{cell(f.get('median_snr_db'))} | {cell(f.get('names_right'), True)} | "
            f"{cell(f.get('beat_se'), True)} | {cell(f.get('beat_ppv'), True)} | "
            f"{cell(f.get('class_agreement'), True)} | "
            + (
                f"{cell(f['accuracy_page'], True)} / "
                f"{cell(f['accuracy_record'], True)} ({f['beats_labelled']})"
                if "accuracy_page" in f
                else "-"
            )
            + f" | {cell(f.get('seconds_median'))} |"
        )
    for part, d in res.get("block", {}).items():
        for how in ("all leads", "lead II alone"):
            b = d[how]
            lines.append("")
            lines.append(
                f"Block decision, {part}, {how}: "
                + "; ".join(
                    f"{k} recall {100 * v['recall']:.0f}% ({v['pages']} pages), "
                    f"precision {100 * v['precision']:.0f}% ({v['called']} called)"
                    for k, v in b.items()
                )
            )
    return "\n".join(lines)
