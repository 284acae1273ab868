"""Assemble ``artifacts/default`` from finished runs: model, metrics, model card.

``python -m ecg_model publish-default --random RUN --patient RUN [--seed-random RUN]
[--seed-patient RUN] [--style-test DIR]`` copies the random-protocol run's model
(the one ``predict`` uses), keeps the patient-protocol model beside it in
``patient/``, and writes ``metrics.json`` with both protocols, the naive
baseline and the seed network, and ``MODEL_CARD.md``.
"""

from __future__ import annotations

import os
import shutil
from datetime import date
from pathlib import Path

from .core.classes import CLASSES, SHORT_NAMES
from .core.errors import EcgError
from .core.io import atomic_write_json, atomic_write_text, default_model_dir, json_read
from .inference.rhythm import rhythm_describe
from .training.evaluate import HEADLINE

RUN_KEEP = (
    "model.keras",
    "preprocessing.json",
    "config.json",
    "history.csv",
    "confusion_matrix.csv",
    "metrics.json",
    "status.json",
    "rhythm.json",
)
CITATIONS = "\n".join(
    [
        "- Moody GB, Mark RG. The impact of the MIT-BIH Arrhythmia Database. "
        "IEEE Eng Med Biol 20(3):45-50 (2001).",
        "- Greenwald SD. The development and analysis of a ventricular fibrillation "
        "detector. MS thesis, MIT (1986).",
        "- Goldberger A, et al. PhysioBank, PhysioToolkit, and PhysioNet. "
        "Circulation 101(23):e215-e220 (2000).",
        "- de Chazal P, O'Dwyer M, Reilly RB. Automatic classification of heartbeats "
        "using ECG morphology and heartbeat interval features. IEEE TBME "
        "51(7):1196-1206 (2004).",
        "- Jun TJ, et al. ECG arrhythmia classification using a 2-D convolutional "
        "neural network. arXiv:1804.06812 (2018).",
    ]
)


def _finished(run: Path) -> dict:
    st = json_read(run / "status.json")
    if st.get("state") != "finished":
        raise EcgError(f"{run}: run is {st.get('state')}, not finished")
    return json_read(run / "metrics.json")


def _copy_run(run: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for f in RUN_KEEP:
        if (run / f).exists():
            tmp = dest / f".{f}.tmp"
            shutil.copyfile(run / f, tmp)
            os.replace(tmp, dest / f)
        elif (dest / f).exists():  # e.g. a rhythm step the new run does not have
            (dest / f).unlink()
    atomic_write_text(dest / "SOURCE_RUN", run.name + "\n")


def _summary(m: dict) -> dict:
    keep = {
        k: m[k]
        for k in (
            *HEADLINE,
            "n",
            "ci",
            "per_class",
            "confusion_matrix",
            "n_train",
            "test_records",
        )
        if k in m
    }
    keep["baseline"] = {
        k: m["baseline"][k] for k in (*HEADLINE, "predicts", "per_class")
    }
    if "rr_context" in m:
        rr = m["rr_context"]
        keep["rr_context"] = {
            k: rr[k]
            for k in (
                *HEADLINE,
                "ci",
                "per_class",
                "confusion_matrix",
                "pac_ratio_threshold",
                "irregular_max",
                "fitted_on",
                "criterion",
                "fit_sweep",
            )
            if k in rr
        }
    return keep


def default_publish(
    random_run: Path,
    patient_run: Path,
    seed_random: Path | None = None,
    seed_patient: Path | None = None,
    style_test: Path | None = None,
    dest: Path | None = None,
) -> dict:
    """Write ``artifacts/default`` (or ``dest``); returns its ``metrics.json``."""
    dest = dest or default_model_dir()
    m_rand, m_pat = _finished(random_run), _finished(patient_run)
    _copy_run(random_run, dest)
    _copy_run(patient_run, dest / "patient")
    metrics = {
        "model": json_read(random_run / "config.json")["model"],
        "classes": list(CLASSES),
        "protocols": {"random": _summary(m_rand), "patient": _summary(m_pat)},
        "baseline": {
            "random": _summary(m_rand)["baseline"],
            "patient": _summary(m_pat)["baseline"],
        },
        "runs": {"random": random_run.name, "patient": patient_run.name},
    }
    seed = {}
    for name, run in (("random", seed_random), ("patient", seed_patient)):
        if run:
            m = _finished(run)
            seed[name] = {k: m[k] for k in (*HEADLINE, "ci", "per_class") if k in m}
            metrics["runs"][f"seed_{name}"] = run.name
    if seed:
        metrics["seed"] = seed
    if style_test:
        from .inference.predict import Predictor
        from .styles import style_test_evaluate

        metrics["style_test"] = {
            "patient_model": style_test_evaluate(
                Predictor(dest / "patient"), style_test
            ),
            "default_model": style_test_evaluate(Predictor(dest), style_test),
            "note": "beats of mitdb DS2 and vfdb test records drawn by matplotlib; "
            "held out from the patient model only",
        }
    atomic_write_json(dest / "metrics.json", metrics)
    atomic_write_text(dest / "MODEL_CARD.md", model_card(metrics, dest))
    return metrics


def examples_write(
    dataset: Path, dest: Path, per_class: int = 2, seed: int = 0
) -> list[Path]:
    """Copy ``per_class`` test-part images of each class to ``dest`` as small examples.

    Names are ``<short class>_<n>_<record>.png`` (e.g. ``PVC_1_mitdb-119.png``);
    taken from the test part, so with a patient-split dataset they are beats of
    records the patient model never saw.
    """
    import numpy as np

    from .data.dataset import manifest_read

    man = manifest_read(dataset)
    man = man[man["split"] == "test"]
    rng = np.random.default_rng(seed)
    out = []
    dest.mkdir(parents=True, exist_ok=True)
    for c in CLASSES:
        sub = man[man["class"] == c]
        if sub.empty:
            continue
        # Prefer different records, so the examples are not one patient's beats.
        firsts = sub.groupby("record").head(1)
        pool = firsts if len(firsts) >= per_class else sub
        rows = pool.iloc[
            rng.choice(len(pool), min(per_class, len(pool)), replace=False)
        ]
        for i, (_, r) in enumerate(rows.iterrows(), 1):
            name = f"{SHORT_NAMES[c]}_{i}_{r['database']}-{r['record']}.png"
            data = (Path(dataset) / r["path"]).read_bytes()
            from .core.io import atomic_write_bytes

            atomic_write_bytes(dest / name, data)
            out.append(dest / name)
    return out


def _pct(v: float) -> str:
    return f"{100 * v:.2f}"


def _ci(m: dict, k: str) -> str:
    c = m.get("ci", {}).get(k)
    return f"{_pct(m[k])} [{_pct(c[0])}, {_pct(c[1])}]" if c else _pct(m[k])


def results_table(metrics: dict) -> str:
    """Markdown table: both protocols, baseline and seed network (for the README)."""
    rows = [
        "| protocol | model | accuracy % [95% CI] | macro recall % | macro F1 % |",
        "|---|---|---|---|---|",
    ]
    for proto in ("random", "patient"):
        m = metrics["protocols"][proto]
        rows.append(
            f"| {proto} | {metrics['model']} (default) | {_ci(m, 'accuracy')} | "
            f"{_ci(m, 'macro_recall')} | {_ci(m, 'macro_f1')} |"
        )
        s = metrics.get("seed", {}).get(proto)
        if s:
            rows.append(
                f"| {proto} | seed (original report's CNN) | {_ci(s, 'accuracy')} | "
                f"{_ci(s, 'macro_recall')} | {_ci(s, 'macro_f1')} |"
            )
        rr = m.get("rr_context")
        if rr:
            gate = rr.get("irregular_max")
            rows.append(
                f"| {proto} | {metrics['model']} + rhythm step (PAC if RR ratio < "
                f"{rr['pac_ratio_threshold']:.2f}"
                + (f", irregularity < {gate:.2f}" if gate is not None else "")
                + f") | {_ci(rr, 'accuracy')} | "
                f"{_ci(rr, 'macro_recall')} | {_ci(rr, 'macro_f1')} |"
            )
        b = m["baseline"]
        rows.append(
            f"| {proto} | baseline: always {SHORT_NAMES[b['predicts']]} | "
            f"{_pct(b['accuracy'])} | {_pct(b['macro_recall'])} | "
            f"{_pct(b['macro_f1'])} |"
        )
    return "\n".join(rows)


def per_class_table(m: dict) -> str:
    rows = [
        "| class | precision % [95% CI] | recall (sensitivity) % [95% CI] | F1 % "
        "| support |",
        "|---|---|---|---|---|",
    ]
    for c in CLASSES:
        d = m["per_class"][c]
        pc, rc = d.get("precision_ci"), d.get("recall_ci")
        p = f"{_pct(d['precision'])}" + (
            f" [{_pct(pc[0])}, {_pct(pc[1])}]" if pc else ""
        )
        r = f"{_pct(d['recall'])}" + (f" [{_pct(rc[0])}, {_pct(rc[1])}]" if rc else "")
        rows.append(f"| {c} | {p} | {r} | {_pct(d['f1'])} | {d['support']} |")
    return "\n".join(rows)


def model_card(metrics: dict, dest: Path) -> str:
    pre = json_read(dest / "preprocessing.json")
    cfg = json_read(dest / "config.json")
    r, p = metrics["protocols"]["random"], metrics["protocols"]["patient"]
    rhythm_txt = ""
    if p.get("rr_context"):
        rr = p["rr_context"]
        rhythm_txt = (
            "\n### Patient protocol with the rhythm step, per class\n\n"
            "Where a beat's neighbours are known (a record, a signal, a strip), "
            + rhythm_describe(
                rr["pac_ratio_threshold"], rr.get("irregular_max"), rr.get("use")
            )
            + " (local: 16 intervals each side; `patient/rhythm.json`, fitted on "
            f"the {rr.get('fitted_on', 'training part')}: "
            f"{rr.get('criterion', 'most PACs with PAC PPV >= 0.5')}; "
            "`python -m ecg_model fit-rhythm RUN`).\n\n"
            f"{per_class_table(rr)}\n"
        )
    style = metrics.get("style_test")
    style_txt = ""
    if style:
        sp, sd = style["patient_model"], style["default_model"]
        lines = [
            "| style | patient model accuracy % | default model accuracy % |",
            "|---|---|---|",
        ]
        for s in sp["per_style"]:
            lines.append(
                f"| {s} | {_pct(sp['per_style'][s]['accuracy'])} | "
                f"{_pct(sd['per_style'][s]['accuracy'])} |"
            )
        style_txt = (
            "\n## Pictures drawn by other software\n\n"
            f"{sp['n']} pictures: held-out beats "
            "(mitdb DS2, vfdb test records, 40 a class) drawn by matplotlib in six "
            "styles (thick, anti-aliased, coloured, ECG paper, monitor, JPEG, 64x64 "
            "thumbnails), beside the same beats drawn by the project's renderer (the "
            "first row: the model's own-style reference). The patient model never saw "
            "these records; the default model saw other beats of them.\n\n"
            f"Overall accuracy (all rows): patient model {_ci(sp, 'accuracy')}, macro "
            f"recall {_pct(sp['macro_recall'])}; default model {_pct(sd['accuracy'])}, "
            f"macro recall {_pct(sd['macro_recall'])}.\n\n" + "\n".join(lines) + "\n"
        )
    return f"""# Model card: `{metrics["model"]}` six-class ECG beat-image classifier

Generated by `python -m ecg_model publish-default` on {date.today().isoformat()}.

## Intended use
Research and education: exploring how a CNN separates beat types on beat images.
**Not a medical device.** It must not be used to diagnose, triage or treat anyone.

## Model
- Architecture `{metrics["model"]}` (see `ecg_model/models.py`), trained by
  `python -m ecg_model train` with `config.json` beside the weights
  (epochs {cfg["epochs"]}, batch {cfg["batch_size"]},
  learning rate {cfg["learning_rate"]},
  class weights `{cfg["balance"]}`, augmentation {cfg["augment"]},
  edge blanking {cfg.get("edge_blank", 0.0)}, seed {cfg["seed"]}).
- Input: a {pre["image_height"]}x{pre["image_width"]} grayscale picture of
  {pre["window_before_s"] + pre["window_after_s"]:.1f} s of single-lead ECG
  ({pre["window_before_s"]} s before the beat, {pre["window_after_s"]} s after), so the
  neighbouring beats show; any uploaded picture is first reduced to its trace and
  redrawn this way (`preprocessing.json`).
- Output: probabilities of {", ".join(CLASSES)}.
- `model.keras` here is trained on the random protocol's training part;
  `patient/model.keras` on the record-disjoint protocol's.

## Data
MIT-BIH Arrhythmia Database (48 records, beat labels N, L, A, V, R, !) and MIT-BIH
Malignant Ventricular Ectopy Database (VF/VFL/VFIB rhythm episodes, windows every 1 s),
resampled to {pre["fs"]:g} Hz, band-passed 0.5-40 Hz, lead MLII where present.

## Splits
- **random**: 70:30 by beat, stratified (the original report's protocol). The same
  patients are in train and test, so this overstates accuracy on new patients.
- **patient**: record-disjoint, de Chazal et al. 2004: mitdb DS1 train / DS2 test,
  paced records 102, 104, 107, 217 excluded; vfdb records 419, 424, 429, 609 test,
  the other VF records train. This is the honest figure for a new patient.
- 10% of each training part (stratified) is held out for early stopping.

## Results (held-out test parts; 95% bootstrap CIs)

{results_table(metrics)}

### Random protocol, per class

{per_class_table(r)}

### Patient protocol, per class

{per_class_table(p)}
{rhythm_txt}{style_txt}
## Known failure modes
- New patients (patient protocol) are much harder than the random split suggests,
  above all premature atrial contractions, whose shape matches normal beats and
  whose only cue is prematurity. The patient model's rhythm step, used where a
  beat's neighbours are known, finds about three quarters of them in the test
  records; it stays off in irregular rhythms (atrial fibrillation), and in a
  regular rhythm it still calls some early normal beats (sinus arrhythmia) PAC.
- Beats of the classes it does not know (fusion, escape, paced, aberrant, nodal)
  are forced into one of the six.
- Ventricular fibrillation training windows come from 5 patients (mitdb 207 and 4
  vfdb records): expect lower recall on other VF morphologies.
- Pictures: the redraw expects one trace, wider than tall, with the beat at
  {pre["window_before_s"]} / {pre["window_before_s"] + pre["window_after_s"]:.1f} of its
  width; a multi-lead page, a cropped beat or a strip of another length is out
  of contract.
- Per-window amplitude scaling discards absolute amplitude.

## Citations
{CITATIONS}
"""
