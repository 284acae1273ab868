"""Assemble ``artifacts/default`` from finished runs: model, metrics, model card.

``python -m ecg_model publish-default --random RUN --patient RUN [--seed-random RUN]
[--seed-patient RUN] [--style-test DIR] [--reruns RUN ...]`` copies the
random-protocol run's model (the one ``predict`` uses), keeps the
patient-protocol model beside it in ``patient/``, and writes ``metrics.json``
with both protocols, the naive baseline, the seed network and the spread of the
patient recipe's reruns, and ``MODEL_CARD.md``.
"""

from __future__ import annotations

import os
import shutil
import string
from datetime import date
from pathlib import Path

from .core.classes import CLASSES, SHORT_NAMES
from .core.errors import EcgError
from .core.io import atomic_write_json, atomic_write_text, default_model_dir, json_read
from .data.databases import DATABASES
from .data.dataset import dataset_options
from .inference.rhythm import rhythm_describe
from .training.calibrate import calibration_markdown
from .training.evaluate import HEADLINE, lodo_table

#: The model card's prose, filled by :func:`model_card`.
MODEL_CARD_TEMPLATE = Path(__file__).with_name("templates") / "model_card.md"

RUN_KEEP = (
    "model.keras",
    "preprocessing.json",
    "config.json",
    "history.csv",
    "confusion_matrix.csv",
    "metrics.json",
    "status.json",
    "rhythm.json",
    "strip_eval.json",
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
            "by_database",
            "ci_method",
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
                "use",
                "compared",
            )
            if k in rr
        }
    if "block_stage" in m:
        keep["block_stage"] = block_summary(m["block_stage"])
    return keep


def block_summary(res: dict) -> dict:
    """What the published metrics keep of a run's ``block_stage`` (``fit-block``):
    the choice, the test figures by beat and by recording, the six classes of
    seed 0's stage."""
    t = res["test"]
    full = res.get("full_seed0", {})
    return {
        "chosen": res["chosen"],
        "fitted_on": res["fitted_on"],
        "choice": res["choice"],
        "seeds": res["seeds"],
        "no_widths": res.get("no_widths", {}),
        "test": {
            k: t[k]
            for k in (
                "picture",
                "picture_conduction",
                "both_mean",
                "both_lead_ii_mean",
                "conduction_beats",
                "recordings",
                "recordings_lead_ii",
            )
            if k in t
        },
        "per_seed": [{"seed": r["seed"], **r["both"]} for r in t.get("per_seed", [])],
        "six_classes_seed0": {
            k: full[k] for k in (*HEADLINE, "ci", "per_class", "n") if k in full
        },
    }


def block_publish(dest: Path, like: Path) -> dict:
    """Join run ``like``'s block-stage figures (its ``metrics.json``'s
    ``block_stage``: a same-recipe run scored on new patients) to the published
    model in ``dest`` as its patient protocol's ``block_stage``, and render the
    card again. Returns the metrics written."""
    m_like = json_read(Path(like) / "metrics.json")
    if "block_stage" not in m_like:
        raise EcgError(f"{like}: no block_stage in its metrics.json (run fit-block)")
    metrics = json_read(dest / "metrics.json")
    metrics["protocols"]["patient"]["block_stage"] = block_summary(
        m_like["block_stage"]
    )
    atomic_write_json(dest / "metrics.json", metrics)
    atomic_write_text(dest / "MODEL_CARD.md", model_card(metrics, dest))
    return metrics


def block_markdown(b: dict) -> str:
    """The block stage's figures on new patients as Markdown (card and docs)."""
    t = b["test"]
    pic, both, ii = t["picture"], t["both_mean"], t.get("both_lead_ii_mean")
    rows = [
        ("picture alone (with the rhythm step)", pic),
        ("picture + block stage", both),
    ]
    if ii:
        rows.append(("picture + a stage fitted on lead II alone", ii))
    lines = [
        "| on new patients' beats, % | macro recall | macro F1 | Normal precision "
        "| LBBB recall / precision | RBBB recall / precision "
        "| PVC recall / precision |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in rows:
        lines.append(
            f"| {name} | {_pct(m['macro_recall'])} | {_pct(m['macro_f1'])} | "
            f"{_pct(m['normal_precision'])} | {_pct(m['lbbb_recall'])} / "
            f"{_pct(m['lbbb_precision'])} | {_pct(m['rbbb_recall'])} / "
            f"{_pct(m['rbbb_precision'])} | {_pct(m['pvc_recall'])} / "
            f"{_pct(m['pvc_precision'])} |"
        )
    rec = [("every lead the record has", t.get("recordings"))]
    rec.append(("lead II alone", t.get("recordings_lead_ii")))
    if rec[0][1]:
        lines += [
            "",
            "| one decision a test recording, % (recordings) "
            "| LBBB recall / precision | RBBB recall / precision |",
            "|---|---|---|",
        ]
        for name, r in rec:
            if r:
                lines.append(
                    f"| {name} | {_pct(r['LBBB']['recall'])} / "
                    f"{_pct(r['LBBB']['precision'])} ({r['LBBB']['recordings']}) | "
                    f"{_pct(r['RBBB']['recall'])} / {_pct(r['RBBB']['precision'])} "
                    f"({r['RBBB']['recordings']}) |"
                )
    lines += [
        "",
        f"Stage `{b['chosen']}`, fitted on the {b['fitted_on']}; chosen by "
        f"{b['choice']}. Beat figures are the mean over seeds "
        f"{', '.join(str(s) for s in b['seeds'])} (LBBB recall by seed: "
        + ", ".join(_pct(r["lbbb_recall"]) for r in b["per_seed"])
        + "; RBBB: "
        + ", ".join(_pct(r["rbbb_recall"]) for r in b["per_seed"])
        + ").",
    ]
    return "\n".join(lines)


#: What may differ between the patient run and a rerun of its recipe.
RERUN_FREE = ("seed", "strategy")


def _reruns(patient_run: Path, m_pat: dict, runs: tuple[Path, ...]) -> list[dict]:
    """Headline and per-class figures of the patient run (its ``metrics.json``,
    ``m_pat``) and of each rerun of its recipe (same dataset and configuration
    but for the seed), in that order.

    Raises
    ------
    EcgError
        If a rerun is unfinished or its configuration differs in more than
        its seed.
    """
    cfg = json_read(patient_run / "config.json")

    def row(run: Path, c: dict, m: dict) -> dict:
        return {
            "run": run.name,
            "seed": c.get("seed"),
            **{k: m[k] for k in HEADLINE},
            "per_class": {
                k: {x: d[x] for x in ("precision", "recall")}
                for k, d in m["per_class"].items()
            },
        }

    out = [row(patient_run, cfg, m_pat)]
    for run in runs:
        m = _finished(run)
        c = json_read(run / "config.json")
        other = sorted(
            k
            for k in set(cfg) | set(c)
            if k not in RERUN_FREE and cfg.get(k) != c.get(k)
        )
        if other:
            raise EcgError(
                f"{run}: not a rerun of {patient_run.name}'s recipe "
                f"(differs in {', '.join(other)})"
            )
        out.append(row(run, c, m))
    return out


def reruns_table(reruns: list[dict]) -> str:
    """Markdown: one row per training of the patient recipe, and their range."""
    head = ["run", "seed", "accuracy %", "macro recall %", "macro F1 %"]
    head += [f"{SHORT_NAMES[c]} R / P %" for c in CLASSES]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, r in enumerate(reruns):
        cells = [r["run"] + (" (published)" if i == 0 else ""), str(r["seed"])]
        cells += [_pct(r[k]) for k in HEADLINE]
        cells += [
            f"{_pct(r['per_class'][c]['recall'])} / "
            f"{_pct(r['per_class'][c]['precision'])}"
            for c in CLASSES
        ]
        rows.append("| " + " | ".join(cells) + " |")

    def span(vals: list[float]) -> str:
        return f"{_pct(min(vals))}-{_pct(max(vals))}"

    cells = ["range", ""] + [span([r[k] for r in reruns]) for k in HEADLINE]
    cells += [
        f"{span([r['per_class'][c]['recall'] for r in reruns])} / "
        f"{span([r['per_class'][c]['precision'] for r in reruns])}"
        for c in CLASSES
    ]
    rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _build_options(run: Path) -> dict:
    """The build options of a run's dataset (``dataset.json``), or {} where the
    dataset is gone or says none."""
    try:
        root = Path(json_read(run / "config.json").get("dataset") or "")
    except (EcgError, TypeError, AttributeError):
        return {}
    return dataset_options(root)


def default_publish(
    random_run: Path,
    patient_run: Path,
    seed_random: Path | None = None,
    seed_patient: Path | None = None,
    style_test: Path | None = None,
    dest: Path | None = None,
    all_run: Path | None = None,
    lodo: Path | None = None,
    reruns: tuple[Path, ...] = (),
) -> dict:
    """Write ``artifacts/default`` (or ``dest``); returns its ``metrics.json``.

    With ``all_run`` (a run of the patient run's recipe on every patient,
    ``--split all``), that model is the default ``predict`` uses, and the
    random-protocol model moves to ``random/``; its expected figures on new
    patients are the patient run's. ``lodo``: a ``lodo`` output folder whose
    ``lodo.json`` joins the metrics and the card. ``reruns``: runs of the
    patient run's recipe with other seeds, whose spread the card shows (kept
    from the last publication while the patient run is the same).
    """
    dest = dest or default_model_dir()
    m_rand, m_pat = _finished(random_run), _finished(patient_run)
    try:
        before = json_read(dest / "metrics.json")
    except EcgError:
        before = {}
    if all_run:
        _finished(all_run)
        _copy_run(all_run, dest)
        _copy_run(random_run, dest / "random")
    else:
        _copy_run(random_run, dest)
        shutil.rmtree(dest / "random", ignore_errors=True)
    _copy_run(patient_run, dest / "patient")
    # A calibration belongs to the model it was fitted for: run
    # 'python -m ecg_model calibrate' again after publishing.
    for f in ("calibration.json", "reliability.png"):
        (dest / f).unlink(missing_ok=True)
    metrics = {
        "model": json_read(random_run / "config.json")["model"],
        "classes": list(CLASSES),
        "default": "all" if all_run else "random",
        "protocols": {"random": _summary(m_rand), "patient": _summary(m_pat)},
        "baseline": {
            "random": _summary(m_rand)["baseline"],
            "patient": _summary(m_pat)["baseline"],
        },
        "runs": {"random": random_run.name, "patient": patient_run.name},
    }
    if all_run:
        metrics["runs"]["all"] = all_run.name
        metrics["model"] = json_read(all_run / "config.json")["model"]
    built = _build_options(all_run or patient_run)
    if built:
        metrics["build"] = built
    if lodo:
        metrics["lodo"] = json_read(Path(lodo) / "lodo.json")["databases"]
    seed = {}
    for name, run in (("random", seed_random), ("patient", seed_patient)):
        if run:
            m = _finished(run)
            seed[name] = {k: m[k] for k in (*HEADLINE, "ci", "per_class") if k in m}
            metrics["runs"][f"seed_{name}"] = run.name
    if not seed and before.get("runs", {}).get("random") == random_run.name:
        # The original report's network keeps its rows beside the unchanged
        # random model when its runs are not given again.
        seed = before.get("seed", {})
        for name in seed:
            metrics["runs"][f"seed_{name}"] = before["runs"].get(f"seed_{name}", "")
    if seed:
        metrics["seed"] = seed
    if reruns:
        metrics["reruns"] = _reruns(patient_run, m_pat, tuple(reruns))
    elif before.get("runs", {}).get("patient") == patient_run.name:
        if before.get("reruns"):
            metrics["reruns"] = before["reruns"]
    if style_test:
        from .inference.predict import Predictor
        from .styles import style_test_evaluate

        metrics["style_test"] = {
            "patient_model": style_test_evaluate(
                Predictor(dest / "patient"), style_test
            ),
            "default_model": style_test_evaluate(Predictor(dest), style_test),
            "note": "beats of the test patients drawn in other software's styles; "
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
    on_all = metrics.get("default") == "all"
    for proto in ("patient", "random") if on_all else ("random", "patient"):
        m = metrics["protocols"][proto]
        # Which model scored the row: with a default trained on every patient,
        # the patient row is its recipe with the test patients held out.
        who = (
            "(the default's recipe, test patients held out)"
            if on_all and proto == "patient"
            else "(its own model)"
            if on_all
            else "(default)"
        )
        rows.append(
            f"| {proto} | {metrics['model']} {who} | {_ci(m, 'accuracy')} | "
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
            step = (
                "learnt rhythm stage"
                if rr.get("use") == "learnt"
                else f"rhythm rule (PAC if RR ratio < {rr['pac_ratio_threshold']:.2f}"
                + (f", irregularity < {gate:.2f}" if gate is not None else "")
                + ")"
            )
            rows.append(
                f"| {proto} | {metrics['model']} + {step} | {_ci(rr, 'accuracy')} | "
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


def by_database_table(m: dict) -> str:
    """Markdown: the patient protocol's test figures for each database."""
    rows = [
        "| database | test beats | accuracy % [95% CI, by patient] | macro recall % |",
        "|---|---|---|---|",
    ]
    for db, d in m.get("by_database", {}).items():
        rows.append(
            f"| {db} | {d['n']:,} | {_ci(d, 'accuracy')} | {_pct(d['macro_recall'])} |"
        )
    return "\n".join(rows)


def model_card(metrics: dict, dest: Path) -> str:
    pre = json_read(dest / "preprocessing.json")
    cfg = json_read(dest / "config.json")
    r, p = metrics["protocols"]["random"], metrics["protocols"]["patient"]
    on_all = metrics.get("default") == "all"
    rhythm_txt = ""
    if p.get("rr_context"):
        rr = p["rr_context"]
        cmp_txt = ""
        if rr.get("compared"):
            cmp_txt = (
                "Both steps on the same test beats (PAC sensitivity / PPV):\n\n"
                + (
                    "\n".join(
                        f"- {k}: accuracy {_pct(v['accuracy'])}%, macro F1 "
                        f"{_pct(v['macro_f1'])}%, PAC {_pct(v['pac_sensitivity'])}% / "
                        f"{_pct(v['pac_ppv'])}%"
                        for k, v in rr["compared"].items()
                    )
                    + "\n\n"
                )
            )
        rhythm_txt = (
            "\n### Patient protocol with the rhythm step, per class\n\n"
            "Where a beat's neighbours are known (a record, a signal, a strip), "
            + rhythm_describe(
                rr["pac_ratio_threshold"], rr.get("irregular_max"), rr.get("use")
            )
            + " (local: 16 intervals each side; `rhythm.json`, fitted on "
            f"the {rr.get('fitted_on', 'training part')}; "
            "`python -m ecg_model fit-rhythm RUN`).\n\n"
            + cmp_txt
            + f"{per_class_table(rr)}\n"
        )
    block_txt, first_screen = "", ""
    if p.get("block_stage"):
        b = p["block_stage"]
        six = b.get("six_classes_seed0")
        block_txt = (
            "\n### Patient protocol with the block stage\n\n"
            "Where a beat's QRS is measured (a record, a signal; not a single "
            "picture), the block stage divides each conducted beat between "
            "Normal, LBBB and RBBB by its measured QRS duration and shape in every "
            "lead the signal has (`block.json`; `python -m ecg_model fit-block "
            "RUN`).\n\n"
            + block_markdown(b)
            + "\n"
            + (
                f"\nSix classes with the stage (seed 0):\n\n{per_class_table(six)}\n"
                if six and six.get("per_class")
                else ""
            )
        )
        first_screen = (
            "\n## On new patients, in one screen\n\n" + block_markdown(b) + "\n"
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
            f"{sp['n']} pictures: beats of the test patients drawn by matplotlib "
            "in several styles (thick, anti-aliased, coloured, ECG paper, monitor, "
            "JPEG, 64x64 thumbnails, a tight crop of one beat, 2-4 s on ECG paper), "
            "beside the same beats drawn by the project's renderer (the first row: "
            "the model's own-style reference). The patient model never saw these "
            "patients; the default model "
            + ("trained on them.\n\n" if on_all else "saw other beats of some.\n\n")
            + f"Overall accuracy (all rows): patient model {_ci(sp, 'accuracy')}, "
            f"macro recall {_pct(sp['macro_recall'])}; default model "
            f"{_pct(sd['accuracy'])}, macro recall {_pct(sd['macro_recall'])}.\n\n"
            + "\n".join(lines)
            + "\n"
        )
    reruns_txt = ""
    if metrics.get("reruns"):
        reruns_txt = (
            "\n### One training among several\n\n"
            "The patient protocol's recipe trained again with other seeds: the "
            "same build, test patients and configuration; only the draw of the "
            "capped beats and of the validation share, the initial weights and "
            "the order of the batches differ. A new training of this recipe can "
            "land anywhere in this range, and a difference between two recipes "
            "smaller than it is not evidence.\n\n"
            + reruns_table(metrics["reruns"])
            + "\n"
        )
    lodo_txt = ""
    if metrics.get("lodo"):
        lodo_txt = (
            "\n## Leave one database out\n\n"
            "For each database, a model of the same recipe (fewer epochs) trained "
            "on all the others and tested on every patient of it "
            "(`python -m ecg_model lodo`). A new database differs in lead, rate, "
            "hardware and labellers.\n\n"
            + lodo_table({"databases": metrics["lodo"]})
            + "\n"
        )
    if on_all:
        which = (
            "- `model.keras` here is trained on **every patient** of the five "
            "databases (`--split all`, run "
            f"{metrics['runs'].get('all', '')}): it serves new patients, so none "
            "was held back. Its expected figures are the **patient protocol's** "
            "below (the same recipe with the test patients held out, "
            "`patient/`). `random/` holds the random protocol's model."
        )
    else:
        which = (
            "- `model.keras` here is trained on the random protocol's training "
            "part; `patient/model.keras` on the record-disjoint protocol's."
        )
    span = pre["window_before_s"] + pre["window_after_s"]
    leads_txt = (
        " Training patients are also seen through every other lead of their "
        "records, drawn at the same beats (`build-dataset --extra-leads`: mitdb's "
        "second lead, mostly V1; svdb's and vfdb's second channel; cpsc2018's "
        "other eleven); test patients through one lead, as a user's picture is."
        if metrics.get("build", {}).get("extra_leads")
        else ""
    )
    wide = [
        f"{db.name} {', '.join(db.wide_qrs_records)}"
        for db in DATABASES.values()
        if db.wide_qrs_records
    ]
    wide_txt = (
        " The N beats of "
        + "; ".join(wide)
        + " are left out: every conducted beat of these records is wide (QRS of "
        "120 ms or more), a block their database's codes cannot name."
        if wide
        else ""
    )
    noise = float(metrics.get("build", {}).get("noise") or 0)
    if noise:
        leads_txt += (
            f" {100 * noise:.0f}% of each training record's beats are also drawn "
            "with recording-like noise added (`build-dataset --noise`: electrode "
            "motion, 0.5-5 Hz, at -6 to 12 dB; VF windows apart), labelled as the "
            "beat is; test patients are left as recorded."
        )
    # Calibration, where `calibrate` fitted one for this folder.
    cal = dest / "calibration.json"
    calibration_txt = (
        "\n" + calibration_markdown(json_read(cal)) if cal.exists() else ""
    )
    fields = {
        "model": metrics["model"],
        "today": date.today().isoformat(),
        **{k: cfg[k] for k in ("epochs", "batch_size", "learning_rate", "balance")},
        "augment": cfg["augment"],
        "seed": cfg["seed"],
        "class_caps": cfg.get("class_caps") or "none",
        "edge_blank": cfg.get("edge_blank", 0.0),
        "flip": cfg.get("flip", 0.0),
        "lowres": cfg.get("lowres", 0.0),
        "val_by": cfg.get("val_by", "beat"),
        "image_height": pre["image_height"],
        "image_width": pre["image_width"],
        "span": f"{span:.1f}",
        "before": pre["window_before_s"],
        "after": pre["window_after_s"],
        "ms_column": f"{1000 * span / pre['image_width']:.2f}",
        "classes": ", ".join(CLASSES),
        "which": which,
        "fs": f"{pre['fs']:g}",
        "wide_txt": wide_txt,
        "leads_txt": leads_txt,
        "results_table": results_table(metrics),
        "per_class_patient": per_class_table(p),
        "by_database": by_database_table(p),
        "reruns_txt": reruns_txt,
        "rhythm_txt": rhythm_txt,
        "block_txt": block_txt,
        "first_screen": first_screen,
        "per_class_random": per_class_table(r),
        "lodo_txt": lodo_txt,
        "style_txt": style_txt,
        "citations": CITATIONS,
        "calibration_txt": calibration_txt,
    }
    # The card's prose is a template beside the code (templates/model_card.md);
    # what is computed here fills it.
    return string.Template(MODEL_CARD_TEMPLATE.read_text(encoding="utf-8")).substitute(
        fields
    )
