"""Command line: download, build-dataset, train, lodo, evaluate, predict and more.

Every expected failure (bad file, missing data, bad option) prints one line
``error: <file>: <problem>`` on stderr and exits with code 2.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import sys
import time
from pathlib import Path

from .core.classes import CLASSES
from .core.errors import EcgError
from .core.io import (
    artifacts_dir,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    data_dir,
    default_model_dir,
    json_read,
)
from .data.databases import DATABASES, DEFAULT_DATABASES
from .data.render import VIEWS, RenderSpec

# The commands import the layers they need inside their functions: those layers
# load Keras and TensorFlow, whose import notices must be muted first
# (_tensorflow_import_quietly), and a command loads only what it uses.

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _caps(items: list[str] | None) -> dict:
    """``["Normal=20000"]`` -> ``{"Normal": 20000}``."""
    out = {}
    for it in items or []:
        name, _, n = it.rpartition("=")
        if name not in CLASSES or not n.isdigit():
            raise EcgError(
                f"--cap {it!r}: expected 'Class Name=N' with a class of: "
                f"{', '.join(CLASSES)}"
            )
        out[name] = int(n)
    return out


#: The training options each command takes, by TrainConfig field.
TRAIN_OPTIONS = (
    "model", "split", "dataset", "epochs", "batch_size", "learning_rate",
    "class_caps", "balance", "augment", "edge_blank", "flip", "lowres",
    "val_by", "patience", "seed", "strategy",
)  # fmt: skip
LODO_OPTIONS = (
    "model", "epochs", "class_caps", "balance", "edge_blank", "flip", "lowres",
    "val_by", "seed",
)  # fmt: skip
#: signal-check's default epochs (its network is small and slow to converge).
SIGNAL_CHECK_EPOCHS = 12
SIGNAL_CHECK_OPTIONS = (
    "epochs", "batch_size", "learning_rate", "class_caps", "balance", "seed",
)  # fmt: skip


def config_args(
    parser: argparse.ArgumentParser, names: tuple[str, ...], base=None
) -> None:
    """Add ``TrainConfig``'s fields ``names`` to ``parser``: the flag from the
    name, the type, choices and help from the configuration, the default shown
    from ``base`` (the command's defaults). Nothing given keeps the attribute
    off the namespace, so :func:`config_from` can tell given from default."""
    from dataclasses import fields

    from .training.config import FIELD_CHOICES, FIELD_HELP, TrainConfig

    base = base or TrainConfig()
    types = {f.name: f.type for f in fields(TrainConfig)}
    for name in names:
        default = getattr(base, name)
        shown = f" (default {default})" if default not in ("", {}, True) else ""
        helptext = FIELD_HELP[name] + shown
        if name == "augment":
            helptext = f"turn off the {FIELD_HELP[name]}"
        kw = dict(default=argparse.SUPPRESS, help=helptext)
        if name == "class_caps":
            parser.add_argument(
                "--cap", action="append", metavar="CLASS=N", dest=name, **kw
            )
        elif name == "augment":
            parser.add_argument("--no-augment", action="store_false", dest=name, **kw)
        else:
            t = {"int": int, "float": float, "str": str}[types[name]]
            parser.add_argument(
                "--" + name.replace("_", "-"),
                type=t,
                choices=FIELD_CHOICES.get(name),
                metavar=None if name in FIELD_CHOICES else name.upper(),
                **kw,
            )


def config_from(a: argparse.Namespace, base=None):
    """``base`` (default: TrainConfig's defaults) with the options given on the
    command line; a bad value is an EcgError."""
    from dataclasses import fields

    from .training.config import TrainConfig

    base = base or TrainConfig()
    names = [f.name for f in fields(TrainConfig)]
    given = {n: getattr(a, n) for n in names if hasattr(a, n)}
    if "class_caps" in given:
        given["class_caps"] = _caps(given["class_caps"])
    if given.get("dataset") is None and "dataset" in given:
        given["dataset"] = ""
    try:
        return base.replace(**given)
    except ValueError as e:
        raise EcgError(str(e)) from None


def cmd_download(a: argparse.Namespace) -> int:
    from .data.signals import database_download

    root = data_dir(a.data_dir)
    for db in a.databases:
        print(f"downloading {db} into {root / db} ...", file=sys.stderr)
        adapter = DATABASES[db]
        database_download(db, root, adapter.physionet or None, adapter.fetch)
    print(f"done: set ECG_DATA_DIR={root} (or pass --data-dir)")
    return 0


def cmd_build(a: argparse.Namespace) -> int:
    from .app.jobs import build_status_write
    from .data.dataset import BuildOptions, absent_note, dataset_build

    out = Path(a.out) if a.out else artifacts_dir() / "datasets" / a.split
    opts = BuildOptions(
        split=a.split,
        caps=_caps(a.cap),
        min_per_class=a.min_per_class,
        vf_stride_s=a.vf_stride,
        records=tuple(a.records or ()),
        seed=a.seed,
        databases=tuple(a.databases),
        extra_leads=a.extra_leads,
        noise=a.noise,
    )
    spec = RenderSpec(
        image_width=a.image_width, image_height=a.image_height, view=a.view
    )

    status = Path(a.status) if a.status else None
    last = [0.0]

    def progress(f: float, msg: str) -> None:
        print(f"[{f * 100:5.1f}%] {msg}", file=sys.stderr)
        if status and time.time() - last[0] > 0.5:  # for a job page, twice a second
            last[0] = time.time()
            build_status_write(status, state="running", fraction=f, message=msg)

    # SIGTERM (a job manager's cancel) ends the build as cancelled, like Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        if status:
            build_status_write(
                status, state="running", pid=os.getpid(), message="reading records"
            )
        rep = dataset_build(out, opts, spec, data=a.data_dir, progress=progress)
    except EcgError as e:
        if status:
            build_status_write(status, state="failed", error=str(e), message="")
        raise
    except KeyboardInterrupt:
        if status:
            build_status_write(status, state="cancelled", message="")
        raise
    done = f"built {rep['n_images']} images in {rep['elapsed_s']} s"
    if rep["missing_databases"]:
        done += "; " + absent_note(rep["missing_databases"])
        print(f"warning: {done}", file=sys.stderr)
    if status:
        build_status_write(
            status,
            state="finished",
            fraction=1.0,
            message=done,
            n_images=rep["n_images"],
            elapsed_s=rep["elapsed_s"],
        )
    print(json.dumps(rep, indent=2))
    print(f"dataset written to {out}", file=sys.stderr)
    return 0


def cmd_lodo(a: argparse.Namespace) -> int:
    from .training.evaluate import lodo_table
    from .training.lodo import lodo_run

    cfg = config_from(a)
    out = Path(a.out) if a.out else artifacts_dir() / "lodo"
    summary = lodo_run(
        a.dataset,
        cfg,
        out,
        tuple(a.databases or ()),
        progress=lambda msg: print(msg, file=sys.stderr, flush=True),
    )
    print(lodo_table(summary))
    print(f"written to {out / 'lodo.json'}", file=sys.stderr)
    return 0


def cmd_signal_check(a: argparse.Namespace) -> int:
    from .training.config import TrainConfig
    from .training.signal_check import signal_check, signal_check_path
    from .training.signal_check import signal_check_table as table

    cfg = config_from(a, TrainConfig(epochs=SIGNAL_CHECK_EPOCHS))
    picture = json_read(Path(a.run) / "metrics.json") if a.run else None
    m = signal_check(
        a.dataset,
        cfg,
        data=a.data_dir,
        out=a.out,
        progress=lambda msg: print(msg, file=sys.stderr, flush=True),
    )
    print(table(m, picture))
    out = signal_check_path(a.dataset, a.out)
    print(f"written to {out} ({m['elapsed_s']:.0f} s)", file=sys.stderr)
    return 0


def cmd_docs(a: argparse.Namespace) -> int:
    from .docs import docs_write

    for path in docs_write():
        print(f"written: {path}", file=sys.stderr)
    return 0


def cmd_splits(a: argparse.Namespace) -> int:
    from .data.dataset import dataset_options, manifest_read, split_table

    split = dataset_options(a.dataset).get("split", "patient")
    if split != "patient":
        # A tabled database's splits (PTB-XL's fold 10) are read from the
        # manifest, which holds them only in a patient build.
        raise EcgError(
            f"{a.dataset}: a {split} build; the split file is written from a "
            "patient build (build-dataset --split patient)"
        )
    tab = split_table(manifest_read(a.dataset))
    out = Path(a.out) if a.out else artifacts_dir() / "splits" / "patient.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, tab.to_csv(index=False).encode())
    test = tab[tab["split"] == "test"]
    print(
        f"{len(tab)} records, {len(test)} test patients; test patients a class: "
        + ", ".join(f"{c} {int((test[c] > 0).sum())}" for c in CLASSES)
    )
    print(f"written to {out}", file=sys.stderr)
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    from .training.config import TrainConfig
    from .training.runfolder import run_create
    from .training.train import train_run

    if a.data_dir:
        os.environ["ECG_DATA_DIR"] = str(a.data_dir)
    if a.run_dir:
        run_dir = Path(a.run_dir)
        if not (run_dir / "config.json").exists():
            raise EcgError(f"{run_dir}: not a run folder (config.json is missing)")
    else:
        base = TrainConfig()
        if a.recipe:
            # The recipe's configuration as it was run; options given change it.
            from .training.recipes import recipe_config

            base = recipe_config(a.recipe)
        cfg = config_from(a, base)
        if cfg.dataset:
            # An image folder: how its class folders read, before anything trains.
            from .data.dataset import folder_notes

            for line in folder_notes(cfg.dataset):
                print(line, file=sys.stderr)
        run_dir = run_create(cfg, a.runs_dir)
    print(f"run folder: {run_dir}", file=sys.stderr)
    # SIGTERM (a job manager's cancel) ends the run as cancelled, like Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    st = train_run(run_dir, verbose=2 if a.verbose else 0)
    print(
        json.dumps(
            {
                k: st.get(k)
                for k in (
                    "state",
                    "test_accuracy",
                    "test_macro_f1",
                    "test_macro_recall",
                    "error",
                    "elapsed_s",
                )
                if k in st
            }
        )
    )
    if st["state"] == "finished":
        from .training.evaluate import metrics_table

        print(metrics_table(json_read(run_dir / "metrics.json")))
        print(run_dir)
        return 0
    print(
        f"error: run {run_dir.name} {st['state']}"
        f"{': ' + st['error'] if st.get('error') else ''}",
        file=sys.stderr,
    )
    return 2 if st["state"] == "failed" else 1  # cancelled: 1


def cmd_calibrate(a: argparse.Namespace) -> int:
    from .training.calibrate import (
        calibrate_from_run,
        calibrate_run,
    )

    model = Path(a.model) if a.model else default_model_dir()
    if a.from_run:
        res = calibrate_from_run(model, a.from_run)
    else:
        res = calibrate_run(model, a.data_dir, tuple(a.databases))
    card = model / "MODEL_CARD.md"
    if card.exists():  # the card rendered again, its calibration section with it
        from .publish import model_card

        atomic_write_text(card, model_card(json_read(model / "metrics.json"), model))
    print(
        f"temperature {res['temperature']:.3f}; ECE {100 * res['ece_before']:.1f}% "
        f"-> {100 * res['ece_after']:.1f}% on {res['evaluated_on']}; uncertain "
        f"below {res['uncertain_below']:.2f} ({100 * res['share_flagged']:.1f}% "
        f"of those beats flagged)"
    )
    return 0


def cmd_fit_rhythm(a: argparse.Namespace) -> int:
    from .training.evaluate import metrics_table
    from .training.rhythm_fit import rhythm_fit_run

    res = rhythm_fit_run(
        a.run,
        a.data_dir,
        a.folds,
        lambda msg: print(msg, file=sys.stderr),
        retrain=a.retrain_folds,
    )

    def rule(t: float, g: float | None) -> str:
        return f"ratio < {t:.2f}, irregularity < {'any' if g is None else f'{g:.2f}'}"

    print(f"sweep on the {res['fitted_on']} (PAC sensitivity / PPV):")
    for row in res["fit_sweep"]:
        print(
            f"  {rule(row['threshold'], row['irregular_max'])}: "
            f"{100 * row['sensitivity']:.1f}% / {100 * row['ppv']:.1f}%"
        )
    print(
        f"kept {rule(res['pac_ratio_threshold'], res['irregular_max'])} "
        f"({res['criterion']}), saved in {Path(a.run) / 'rhythm.json'}"
    )
    print("rule and learnt stage on the same test beats:")
    for k, v in res["compared"].items():
        print(
            f"  {k:<7} accuracy {100 * v['accuracy']:.1f}%  macro F1 "
            f"{100 * v['macro_f1']:.1f}%  PAC sensitivity "
            f"{100 * v['pac_sensitivity']:.1f}% PPV {100 * v['pac_ppv']:.1f}%"
        )
    print(f"applied: the {res['use']} (chosen on the training beats)")
    print(f"test part, picture + {res['use']}:")
    print(metrics_table(res))
    return 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    from .data.dataset import dataset_load
    from .inference.predict import Predictor
    from .training.evaluate import (
        baseline_compute,
        metrics_new_patients,
        metrics_table,
    )

    run = Path(a.run)
    if a.refresh:
        from .training.evaluate import metrics_refresh

        print(metrics_table(metrics_refresh(run)))
        print(f"updated {run / 'metrics.json'}", file=sys.stderr)
        return 0
    pred = Predictor(run)
    cfg = json_read(run / "config.json") if (run / "config.json").exists() else {}
    root = a.dataset or cfg.get("dataset") or ""
    if not root:
        root = artifacts_dir() / "datasets" / cfg.get("split", "random")
    ds = dataset_load(root, pred.spec)
    p = pred.predict_arrays(ds.x_test)
    m = metrics_new_patients(ds.y_test, p.argmax(1), ds.meta_test, cfg.get("split", ""))
    m["baseline"] = baseline_compute(ds.y_train, ds.y_test)
    m["protocol"] = cfg.get("split", "")
    m["dataset"] = str(root)
    print(metrics_table(m))
    print("baseline (majority class: " + m["baseline"]["predicts"] + ")")
    print(metrics_table(m["baseline"]))
    if a.style_test:
        from .styles import style_test_evaluate

        st = style_test_evaluate(pred, Path(a.style_test))
        m["style_test"] = st
        print(
            f"style test ({a.style_test}): accuracy {st['accuracy']:.4f} "
            f"macro recall {st['macro_recall']:.4f}"
        )
    return 0


def cmd_predict(a: argparse.Namespace) -> int:
    import csv

    from .inference.predict import Predictor

    pred = Predictor(a.model)
    rows, failed = [], 0
    from .data.pictures import image_read

    for f in a.images:
        try:
            pic = image_read(f)
            # The same decision as the Predict page's: here a strip is told to
            # go to analyze-strip, and read as one beat all the same.
            _, warning = pred.picture_read_as(pic, str(f), "beat")
            if warning:
                print(f"warning: {warning} (analyze-strip)", file=sys.stderr)
            rows.append(pred.predict_picture(pic, str(f), a.duration))
        except EcgError as e:
            print(f"error: {e}", file=sys.stderr)
            failed += 1
    if a.format == "json":
        print(json.dumps([r.to_json() for r in rows], indent=2))
    else:
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(["file", "predicted_class", "confidence", *CLASSES, "span_s"])
        for r in rows:
            w.writerow(
                [
                    r.file,
                    r.predicted_class,
                    f"{r.confidence:.6f}",
                    *(f"{r.probabilities[c]:.6f}" for c in CLASSES),
                    f"{r.span.duration_s:.3f}" if r.span.duration_s > 0 else "",
                ]
            )
            if r.span.source in ("grid", "one beat", "lone") or r.span.note:
                print(f"{r.file}: time span {r.span.describe()}", file=sys.stderr)
            if r.uncertain:
                print(f"{r.file}: uncertain: {r.reason}", file=sys.stderr)
    return 2 if failed else 0


def cmd_predict_record(a: argparse.Namespace) -> int:
    import csv

    import numpy as np

    from .inference.block import block_decide, block_describe
    from .inference.predict import Predictor, csv_signal_read, record_leads

    src = Path(a.source)
    others, lead = {}, ""
    if src.suffix.lower() == ".csv":
        if not a.fs:
            raise EcgError(f"{src}: a CSV needs its sampling rate (--fs HZ)")
        sig, fs = csv_signal_read(src, fs=float(a.fs)), float(a.fs)
    else:
        from .data.signals import record_raw_read

        base = src.with_suffix("") if src.suffix in (".hea", ".dat", ".atr") else src
        # The one reader, with the header and checksum guards of every other.
        sig, fs, lead, others = record_leads(record_raw_read(base))
        fs = float(a.fs or fs)
    pred = Predictor(a.model)
    table = pred.predict_signal(np.asarray(sig, float), fs, others, lead)
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(
        ["beat", "sample", "time_s", "predicted_class", "confidence", *CLASSES]
        + ["qrs_ms", "note"]
    )
    for i, (s, t, p, q, note) in enumerate(
        zip(table.sample, table.time_s, table.probabilities, table.qrs_ms, table.notes)
    ):
        w.writerow(
            [
                i + 1,
                int(s),
                f"{t:.3f}",
                CLASSES[int(p.argmax())],
                f"{p.max():.6f}",
                *(f"{v:.6f}" for v in p),
                "" if np.isnan(q) else f"{q:.0f}",  # not measured: empty
                note,
            ]
        )
    if pred.block_stage is not None:
        decision = block_decide(
            table.predicted, table.block_q, table.qrs_ms, table.leads
        )
        print(f"{src.name}: {block_describe(decision)}", file=sys.stderr)
    return 0


def cmd_fit_span(a: argparse.Namespace) -> int:
    from .training.span_fit import SPAN_JSON, span_fit

    info = span_fit(
        a.run,
        data=a.data_dir,
        per_class=a.per_class,
        seeds=tuple(a.seeds),
        epochs=a.epochs,
        progress=lambda msg: print(msg, file=sys.stderr),
    )
    for r in info["runs"]:
        print(
            f"seed {r['seed']}: {r['within_15']:.1%} of {r['n']} test thumbnails' "
            f"spans within 15% ({r['within_30']:.1%} within 30%; median error "
            f"{r['median_error']:.1%})"
        )
    print(f"saved in {Path(a.run) / 'span.keras'} and {SPAN_JSON}")
    if a.out:
        atomic_write_json(a.out, info)
    return 0


def cmd_fit_block(a: argparse.Namespace) -> int:
    from .training.block_fit import CANDIDATES, block_fit_all, block_fit_run

    if a.all_patients:
        if not (a.like and a.dataset):
            raise EcgError("--all-patients needs --like RUN and --dataset DIR")
        info = block_fit_all(
            a.run,
            a.dataset,
            a.like,
            data=a.data_dir,
            progress=lambda msg: print(msg, file=sys.stderr),
        )
        print(f"{info['chosen']} fitted on {info['fitted_on']}")
        print(f"saved in {Path(a.run) / 'block.json'}")
        m = Path(a.run) / "metrics.json"
        if m.exists() and "protocols" in json.loads(m.read_text()):
            from .publish import block_publish

            block_publish(Path(a.run), Path(a.like))
            print(f"{a.like}'s figures joined to {m}; MODEL_CARD.md rendered again")
        return 0
    res = block_fit_run(
        a.run,
        dataset=a.dataset,
        data=a.data_dir,
        seeds=tuple(a.seeds),
        candidates=tuple(a.candidates or CANDIDATES),
        progress=lambda msg: print(msg, file=sys.stderr),
    )
    print(
        "out of fold, training patients' recordings (macro F1 of Normal/LBBB/RBBB, "
        "each patient one vote in its class; by beat in brackets):"
    )
    for name, c in res["candidates"].items():
        mark = "  <- kept" if name == res["chosen"] else ""
        print(
            f"  {name:<26} {100 * c['patient_macro_f1_mean']:.1f}% "
            f"({100 * c['macro_f1_mean']:.1f}%){mark}"
        )
    t = res["test"]
    print(f"test patients ({t['conduction_beats']} conducted beats measured):")
    rows = [("picture", t["picture"]), ("picture + stage", t["both_mean"])]
    for name, m in rows:
        print(
            f"  {name:<16} macro recall {100 * m['macro_recall']:.1f}%, macro F1 "
            f"{100 * m['macro_f1']:.1f}%; LBBB {100 * m['lbbb_recall']:.1f}% / "
            f"{100 * m['lbbb_precision']:.1f}%, RBBB {100 * m['rbbb_recall']:.1f}% "
            f"/ {100 * m['rbbb_precision']:.1f}%, Normal precision "
            f"{100 * m['normal_precision']:.1f}% (recall / precision)"
        )
    print(f"saved in {Path(a.run) / 'block.json'}; figures in metrics.json")
    _report_write(
        {"command": "python -m ecg_model " + " ".join(sys.argv[1:]), **res}, a.out
    )
    return 0


def cmd_style_test(a: argparse.Namespace) -> int:
    from .styles import style_test_build

    rep = style_test_build(
        Path(a.out),
        data=a.data_dir,
        per_class=a.per_class,
        seed=a.seed,
        part=a.part,
        styles=tuple(a.styles or ()),
    )
    print(json.dumps(rep, indent=2))
    return 0


def _report_write(rep: dict, out: str | None) -> None:
    """Write a command's figures as JSON where ``--out`` asks (atomically)."""
    if out:
        atomic_write_json(Path(out), rep)
        print(f"written to {out}", file=sys.stderr)


def cmd_qrs_widths(a: argparse.Namespace) -> int:
    from .data.qrs import qrs_widths

    rep = {
        "command": "python -m ecg_model " + " ".join(sys.argv[1:]),
        "part": a.part,
        "per_class": a.per_class,
        "seed": a.seed,
        "widths": qrs_widths(
            data_dir(a.data_dir),
            a.part,
            a.per_class,
            a.seed,
            tuple(a.databases or ()),
        ),
    }
    for db, by_class in rep["widths"].items():
        for c, d in by_class.items():
            print(
                f"{db:13s} {c:34s} n {d['n']:4d} measured {d['measured']:4d} "
                f"median {d['median_ms']} ms, >= 120 ms: {d['share_120']}"
            )
    _report_write(rep, a.out)
    return 0


def cmd_compare_folder(a: argparse.Namespace) -> int:
    from .styles import folder_compare

    rep = folder_compare(Path(a.folder), a.models)
    rep["command"] = "python -m ecg_model " + " ".join(sys.argv[1:])
    for run, res in rep["models"].items():
        for how, m in res.items():
            print(
                f"{run} ({how}): accuracy {m['accuracy']:.4f}, macro recall "
                f"{m['macro_recall']:.4f}, over the classes one beat can show "
                f"{m['macro_recall_lone']:.4f}"
            )
    _report_write(rep, a.out)
    return 0


def cmd_analyze_strip(a: argparse.Namespace) -> int:
    import csv

    from .inference.predict import Predictor, image_read
    from .inference.strip import strip_analyze

    pic = image_read(a.image)
    res = strip_analyze(pic, Predictor(a.model), duration_s=a.duration, name=a.image)
    if a.annotated:
        png_write(a.annotated, res.annotated)
    if a.format == "json":
        print(json.dumps(res.to_json(), indent=2))
        return 0
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(["beat", "time_s", "predicted_class", "confidence", *CLASSES])
    for i, (t, c, p) in enumerate(zip(res.beat_time_s, res.classes, res.probabilities)):
        w.writerow([i + 1, f"{t:.3f}", c, f"{p.max():.6f}", *(f"{v:.6f}" for v in p)])
    hr = "" if res.heart_rate_bpm is None else f"{res.heart_rate_bpm:.1f} bpm"
    print(
        f"# {len(res.classes)} {res.mode} in {res.duration_s:.2f} s; heart rate {hr}; "
        + "; ".join(res.notes),
        file=sys.stderr,
    )
    return 0


def png_write(path: str, rgb) -> None:
    """Write an annotated picture (RGB uint8 array) as a PNG, atomically."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    atomic_write_bytes(path, buf.getvalue())


def cmd_analyze_page(a: argparse.Namespace) -> int:
    import csv

    from .inference.block import block_describe
    from .inference.page import page_analyze
    from .inference.predict import Predictor, image_read

    pic = image_read(a.image)
    res = page_analyze(pic, Predictor(a.model), name=a.image)
    if a.annotated:
        png_write(a.annotated, res.annotated)
    if a.export:
        from .page_eval import page_export

        for p in page_export(res.scan, a.export, Path(a.image).stem):
            print(f"wrote {p}", file=sys.stderr)
    if a.format == "json":
        print(json.dumps(res.to_json(), indent=2))
        return 0
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(["beat", "time_s", "predicted_class", "confidence", "qrs_ms"])
    for b, row in enumerate(res.to_json()["beats"], 1):
        qrs = "" if row["qrs_ms"] is None else row["qrs_ms"]
        w.writerow([b, row["time_s"], row["predicted_class"], row["confidence"], qrs])
    hr = "" if res.heart_rate_bpm is None else f"{res.heart_rate_bpm:.1f} bpm"
    leads = ", ".join(ld.name for ld in res.scan.leads)
    print(
        f"# layout {res.scan.layout} ({leads}); beats read on {res.lead}; heart "
        f"rate {hr}; " + "; ".join(res.scan.notes),
        file=sys.stderr,
    )
    if res.block.get("leads") is not None:
        print(f"# {block_describe(res.block)}", file=sys.stderr)
    return 0


def cmd_page_eval(a: argparse.Namespace) -> int:
    from .data.databases import DATABASES
    from .inference.predict import Predictor
    from .page_eval import page_evaluate, page_table

    model = a.model or default_model_dir() / "patient"
    res = page_evaluate(
        a.folder,
        Predictor(model),
        limit=a.limit,
        test_records=tuple(DATABASES["cpsc2018"].test_records),
        progress=lambda msg: print(msg, file=sys.stderr),
    )
    res["command"] = "python -m ecg_model page-eval " + " ".join(sys.argv[2:])
    res["model"] = os.path.relpath(model)
    print(page_table(res))
    if a.out:
        atomic_write_json(a.out, res)
    return 0


def cmd_strip_eval(a: argparse.Namespace) -> int:
    from .inference.predict import Predictor
    from .strip_eval import StripEvalOptions, strip_eval_table, strip_evaluate

    opts = StripEvalOptions(
        strips_per_record=a.strips_per_record,
        seconds=a.seconds,
        seed=a.seed,
        **({"records": tuple(a.records)} if a.records else {}),
    )

    model = a.model or default_model_dir() / "patient"
    res = strip_evaluate(
        Predictor(model),
        opts,
        data=a.data_dir,
        progress=lambda f, s: print(f"[{100 * f:5.1f}%] {s}", file=sys.stderr),
    )
    print(strip_eval_table(res))
    if a.out:
        atomic_write_json(a.out, res)
    return 0


def cmd_publish(a: argparse.Namespace) -> int:
    from .publish import default_publish, results_table

    def opt(v):
        return Path(v) if v else None

    m = default_publish(
        Path(a.random),
        Path(a.patient),
        opt(a.seed_random),
        opt(a.seed_patient),
        opt(a.style_test),
        all_run=opt(a.all),
        lodo=opt(a.lodo),
        reruns=tuple(Path(r) for r in a.reruns or ()),
    )
    print(results_table(m))
    print(
        "run 'python -m ecg_model calibrate' for the new default model "
        "(its calibration was removed with the old one)",
        file=sys.stderr,
    )
    if a.examples_from:
        from .publish import examples_write

        for f in examples_write(Path(a.examples_from), artifacts_dir() / "examples"):
            print(f"example: {f}")
    return 0


def parser_build() -> argparse.ArgumentParser:
    from .data.dataset import SPLITS
    from .training.config import TrainConfig

    p = argparse.ArgumentParser(
        prog="python -m ecg_model", description="Six-class ECG beat-image classifier."
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    data_help = (
        "folder holding mitdb/ and vfdb/ (default: $ECG_DATA_DIR or ../shared/data)"
    )

    s = sub.add_parser("download", help="fetch the public databases from PhysioNet")
    s.add_argument("--data-dir", help=data_help)
    s.add_argument(
        "--databases",
        nargs="+",
        choices=list(DATABASES),
        # roahd's files come with an R package; cinc-samples is a collection.
        default=[d for d in DATABASES if d not in ("roahd", "cinc-samples")],
        help="default: every PhysioNet database (roahd's files come with the "
        "R package roahd, cinc-samples is a collection of challenge samples: "
        "copy them into the data folder)",
    )
    s.set_defaults(fn=cmd_download)

    s = sub.add_parser("build-dataset", help="render beat images into train/ and test/")
    s.add_argument("--data-dir", help=data_help)
    s.add_argument("--out", help="dataset folder (default artifacts/datasets/<split>)")
    s.add_argument("--split", choices=SPLITS, default="random")
    s.add_argument(
        "--cap",
        action="append",
        metavar="CLASS=N",
        help="cap a class in the training part, e.g. 'Normal=20000'",
    )
    s.add_argument(
        "--min-per-class",
        type=int,
        default=0,
        help="top rare training classes up to N images with shifted redraws",
    )
    s.add_argument("--vf-stride", type=float, default=1.0, help="VF window spacing, s")
    s.add_argument(
        "--status", help="keep a JSON status file current (for the dashboard's jobs)"
    )
    s.add_argument(
        "--databases",
        nargs="+",
        choices=list(DATABASES),
        default=list(DEFAULT_DATABASES),
        help="databases read (default: mitdb vfdb, the original report's)",
    )
    s.add_argument(
        "--records", nargs="+", help="only these records, e.g. mitdb/100 vfdb/418"
    )
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--extra-leads",
        action="store_true",
        help="also draw every other lead of each training record at the same beats "
        "(patient split; the test part keeps one lead)",
    )
    s.add_argument(
        "--noise",
        type=float,
        default=0.0,
        metavar="P",
        help="share of each training record's beats also drawn with recording "
        "noise added (electrode motion, -6 to 12 dB; VF windows apart; patient "
        "split; the test part is left as recorded; default 0)",
    )
    s.add_argument(
        "--image-width",
        type=int,
        default=RenderSpec.image_width,
        help="columns the beat window is drawn in; more resolve QRS width "
        f"(default {RenderSpec.image_width})",
    )
    s.add_argument(
        "--image-height",
        type=int,
        default=RenderSpec.image_height,
        help=f"rows (default {RenderSpec.image_height})",
    )
    s.add_argument(
        "--view",
        choices=VIEWS,
        default="window",
        help="'window': each beat in the model's 2.4 s window (default); "
        "'thumbnail': each beat drawn as a one-beat thumbnail of 0.4-1.2 s "
        "(random size, line, grey, clipping) and read back, for a lone-beat "
        "model (a run's lone/ folder)",
    )
    s.set_defaults(fn=cmd_build)

    s = sub.add_parser("train", help="train a model in a new run folder")
    s.add_argument(
        "--recipe",
        metavar="FILE",
        help="an experiment record (experiments/NN-name.json): train its "
        "configuration; other options given change it (e.g. --seed 1)",
    )
    config_args(s, TRAIN_OPTIONS)
    s.add_argument("--data-dir", help=data_help)
    s.add_argument("--runs-dir", help="where run folders go (default artifacts/runs)")
    s.add_argument("--run-dir", help="train this existing queued run folder instead")
    s.add_argument("-v", "--verbose", action="store_true")
    s.set_defaults(fn=cmd_train)

    s = sub.add_parser(
        "docs",
        help="render the documents' figures from the files they cite: "
        "docs/EXPERIMENTS.md from experiments/, the README's headline from the "
        "default's metrics.json, the load table from results/load.json",
    )
    s.set_defaults(fn=cmd_docs)

    s = sub.add_parser(
        "splits",
        help="write the new-patient protocol's records, split and class counts "
        "(artifacts/splits/patient.csv) from a patient-split build",
    )
    s.add_argument("--dataset", required=True, help="a --split patient build")
    s.add_argument("--out", help="CSV path (default artifacts/splits/patient.csv)")
    s.set_defaults(fn=cmd_splits)

    s = sub.add_parser(
        "lodo",
        help="leave one database out: for each database, train on the others and "
        "test on it; write lodo.json and print a table",
    )
    s.add_argument(
        "--dataset",
        required=True,
        help="a dataset of several databases, e.g. a --split patient build of all",
    )
    s.add_argument("--out", help="folder for the runs (default artifacts/lodo)")
    s.add_argument(
        "--databases", nargs="+", choices=list(DATABASES), help="hold out only these"
    )
    config_args(s, LODO_OPTIONS)
    s.set_defaults(fn=cmd_lodo)

    s = sub.add_parser(
        "signal-check",
        help="train a small 1-D network on the signal behind a build's pictures "
        "and score the same test beats: is a miss the picture's or the patients'?",
    )
    s.add_argument("--dataset", required=True, help="a built dataset folder")
    s.add_argument("--data-dir", help=data_help)
    s.add_argument(
        "--run", help="a picture run on that dataset, to print its figures beside"
    )
    s.add_argument(
        "--out", help="JSON path (default signal_check.json in the dataset folder)"
    )
    config_args(s, SIGNAL_CHECK_OPTIONS, TrainConfig(epochs=SIGNAL_CHECK_EPOCHS))
    s.set_defaults(fn=cmd_signal_check)

    s = sub.add_parser(
        "calibrate",
        help="fit a model's temperature and uncertain threshold on held-out "
        "patients (svdb, cudb); write calibration.json and the model card section",
    )
    s.add_argument("--model", help="model or run folder (default: artifacts/default)")
    s.add_argument("--data-dir", help=data_help)
    s.add_argument(
        "--databases",
        nargs="+",
        choices=list(DATABASES),
        default=["svdb", "cudb"],
        help="databases whose patients the model never saw (default: svdb cudb)",
    )
    s.add_argument(
        "--from-run",
        metavar="RUN",
        help="instead, fit on a new-patient run of the same recipe: its "
        "out-of-fold predictions (after fit-rhythm) fit, its test patients "
        "measure (for a model trained on every patient)",
    )
    s.set_defaults(fn=cmd_calibrate)

    s = sub.add_parser(
        "fit-rhythm",
        help="fit the rhythm step (early normal-looking beats -> PAC) on a run's "
        "training records; score its test part",
    )
    s.add_argument("run")
    s.add_argument("--data-dir", help=data_help)
    s.add_argument(
        "--folds",
        type=int,
        default=2,
        help="fit on out-of-fold pictures: train this many extra models, each on "
        "part of the training records (default 2); 0: use the run's own model, "
        "which has seen those beats",
    )
    s.add_argument(
        "--retrain-folds",
        action="store_true",
        help="train the fold models again even if an earlier fit kept their "
        "predictions",
    )
    s.set_defaults(fn=cmd_fit_rhythm)

    s = sub.add_parser(
        "fit-span",
        help="fit the span model (how long a picture of one beat lasts, from its "
        "shape) on thumbnails of the training patients; score the test patients'",
    )
    s.add_argument("run", help="the model folder the span model is saved into")
    s.add_argument("--data-dir", help=data_help)
    s.add_argument(
        "--per-class",
        type=int,
        default=5000,
        help="training thumbnails a class (default 5000; a fifth as many to test)",
    )
    s.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0],
        help="each draws its thumbnails and starts its network anew; the first "
        "seed's model is kept, every seed's figures reported",
    )
    s.add_argument("--epochs", type=int, default=30)
    s.add_argument("--out", help="also write the figures to this JSON file")
    s.set_defaults(fn=cmd_fit_span)

    s = sub.add_parser(
        "fit-block",
        help="fit the block stage (Normal / LBBB / RBBB from the measured QRS) on "
        "a run's training patients; score its test patients",
    )
    s.add_argument("run")
    s.add_argument(
        "--dataset",
        help="built dataset drawn to the run's contract (default: the run's own); "
        "its training patients fit the stage, its test patients score it",
    )
    s.add_argument("--data-dir", help=data_help)
    s.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0, 1, 2],
        help="folds and boosting seeds; figures are their mean (default 0 1 2)",
    )
    s.add_argument("--out", help="also write the figures to this JSON file")
    s.add_argument(
        "--all-patients",
        action="store_true",
        help="fit on every patient of --dataset (a model trained on every "
        "patient) the stage chosen for --like RUN; nothing is scored",
    )
    s.add_argument("--like", help="with --all-patients: the run whose choice to fit")
    s.add_argument(
        "--candidates",
        nargs="+",
        choices=["logistic-II", "logistic-all", "boosting-II", "boosting-all"],
        help="the stages to compare (default: all four)",
    )
    s.set_defaults(fn=cmd_fit_block)

    s = sub.add_parser(
        "evaluate", help="test metrics of a run, with CIs and the baseline"
    )
    s.add_argument("run")
    s.add_argument("--dataset")
    s.add_argument("--style-test", help="folder made by 'style-test' to score too")
    s.add_argument(
        "--refresh",
        action="store_true",
        help="recompute the run's metrics.json from its test_predictions.csv "
        "(intervals over patients, per-database figures); no model is loaded",
    )
    s.set_defaults(fn=cmd_evaluate)

    s = sub.add_parser("predict", help="classify beat images")
    s.add_argument("images", nargs="+")
    s.add_argument("--model", help="run folder (default artifacts/default)")
    s.add_argument("--format", choices=("csv", "json"), default="csv")
    s.add_argument(
        "--duration",
        type=float,
        metavar="S",
        help="seconds each picture's trace spans (a crop of one beat: 0.6-1 s); "
        "default: read from an ECG-paper grid, else estimated",
    )
    s.set_defaults(fn=cmd_predict)

    s = sub.add_parser("predict-record", help="classify every beat of a record or CSV")
    s.add_argument("source", help="WFDB record path (without extension) or a CSV of mV")
    s.add_argument("--fs", type=float, help="sampling rate, Hz (required for a CSV)")
    s.add_argument("--model")
    s.set_defaults(fn=cmd_predict_record)

    s = sub.add_parser("style-test", help="draw held-out beats with matplotlib styles")
    s.add_argument("out")
    s.add_argument("--data-dir", help=data_help)
    s.add_argument("--per-class", type=int, default=40)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--part",
        choices=("test", "train"),
        default="test",
        help="draw the test patients (default) or the training patients "
        "(a development set for tuning robustness)",
    )
    s.add_argument(
        "--styles",
        nargs="+",
        help="draw only these styles (default all; project-renderer is the "
        "reference the others are compared with)",
    )
    s.set_defaults(fn=cmd_style_test)

    s = sub.add_parser(
        "compare-folder", help="several models on one image folder's test part"
    )
    s.add_argument("folder", help="train/<Class>/ [test/<Class>/] image folder")
    s.add_argument("--models", nargs="+", required=True, help="run folders")
    s.add_argument("--out", help="write the figures as JSON here")
    s.set_defaults(fn=cmd_compare_folder)

    s = sub.add_parser(
        "qrs-widths", help="QRS durations measured by database and class"
    )
    s.add_argument("--data-dir", help=data_help)
    s.add_argument("--part", choices=("test", "train"), default="train")
    s.add_argument("--per-class", type=int, default=300)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--databases", nargs="+", help="only these (default all present)")
    s.add_argument("--out", help="write the figures as JSON here")
    s.set_defaults(fn=cmd_qrs_widths)

    s = sub.add_parser("analyze-strip", help="read a rhythm strip, classify its beats")
    s.add_argument("image")
    s.add_argument(
        "--duration",
        type=float,
        help="strip duration, s (only without a grid; default 10)",
    )
    s.add_argument("--format", choices=("csv", "json"), default="csv")
    s.add_argument("--model", help="run folder (default artifacts/default)")
    s.add_argument("--annotated", help="write the annotated picture (PNG) here")
    s.set_defaults(fn=cmd_analyze_strip)

    s = sub.add_parser(
        "analyze-page",
        help="read a 12-lead printout: every lead digitised, the rhythm strip's "
        "beats classified, a block decision from all leads",
    )
    s.add_argument("image")
    s.add_argument("--format", choices=("csv", "json"), default="csv")
    s.add_argument("--model", help="run folder (default artifacts/default)")
    s.add_argument("--annotated", help="write the annotated page (PNG) here")
    s.add_argument(
        "--export",
        metavar="DIR",
        help="write the digitised leads here as WFDB (.hea + .dat) and CSV",
    )
    s.set_defaults(fn=cmd_analyze_page)

    s = sub.add_parser(
        "page-eval",
        help="score the page reader on printouts with their source records "
        "beside them (per-lead SNR, beats, classes, block decisions)",
    )
    s.add_argument("folder", help="e.g. ../shared/data/ecg-images-cpsc2018")
    s.add_argument("--model", help="run folder (default artifacts/default/patient)")
    s.add_argument("--limit", type=int, default=0, help="only the first N pages")
    s.add_argument("--out", help="write the figures as JSON here")
    s.set_defaults(fn=cmd_page_eval)

    s = sub.add_parser("strip-eval", help="score strip reading on held-out records")
    s.add_argument("--model", help="run folder (default artifacts/default/patient)")
    s.add_argument("--data-dir", help=data_help)
    s.add_argument("--records", nargs="+", help="mitdb DS2 records (default all 22)")
    s.add_argument("--strips-per-record", type=int, default=5)
    s.add_argument("--seconds", type=float, default=10.0)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", help="write the figures as JSON here")
    s.set_defaults(fn=cmd_strip_eval)

    s = sub.add_parser(
        "publish-default", help="make artifacts/default from finished runs"
    )
    s.add_argument("--random", required=True, help="run trained on the random split")
    s.add_argument("--patient", required=True, help="run trained on the patient split")
    s.add_argument("--seed-random", help="seed-network run, random split")
    s.add_argument("--seed-patient", help="seed-network run, patient split")
    s.add_argument("--style-test", help="style test folder to score both models on")
    s.add_argument(
        "--all",
        help="run of the patient run's recipe on every patient (--split all): "
        "the default model; the random run then goes to random/",
    )
    s.add_argument("--lodo", help="a 'lodo' output folder to report")
    s.add_argument(
        "--reruns",
        nargs="+",
        metavar="RUN",
        help="runs of the patient run's recipe with other seeds: the card shows "
        "how far one training swings",
    )
    s.add_argument(
        "--examples-from", help="dataset whose test images become the examples"
    )
    s.set_defaults(fn=cmd_publish)
    return p


def _tensorflow_import_quietly() -> None:
    """Import TensorFlow with C-level stderr muted.

    Some TensorFlow builds print absl and CPU-feature notices straight to file
    descriptor 2 on import, whatever TF_CPP_MIN_LOG_LEVEL says; the CLI's stderr
    is kept for its own one-line errors.
    """
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            import keras  # noqa: F401
            import tensorflow as tf

            tf.constant(0.0) + 1.0  # the first op prints the CPU-feature notice
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def main(argv: list[str] | None = None) -> int:
    # The parser lists the model registry, which imports Keras (and TensorFlow).
    _tensorflow_import_quietly()
    p = parser_build()
    a = p.parse_args(argv)
    try:
        return a.fn(a)
    except EcgError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
