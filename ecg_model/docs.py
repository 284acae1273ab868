"""The figures the documents show, rendered from the files they cite.

A generated block sits between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``
in a Markdown file; :func:`docs_write` renders every block (and
``docs/EXPERIMENTS.md`` whole) from its committed file, and
``tests/test_docs.py`` fails when a committed document differs from what this
module writes. ``python -m ecg_model docs`` writes them all.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from .core.classes import CLASSES, SHORT_NAMES
from .core.io import PROJECT_ROOT, atomic_write_text, json_read
from .load import load_table
from .page_eval import page_table
from .training.recipes import EXPERIMENTS_DOC, experiments_read, experiments_render

README = PROJECT_ROOT / "README.md"
RELIABILITY = PROJECT_ROOT / "docs" / "RELIABILITY.md"
DEFAULT_METRICS = PROJECT_ROOT / "artifacts" / "default" / "metrics.json"
LOAD_RESULTS = PROJECT_ROOT / "results" / "load.json"
PICTURES = PROJECT_ROOT / "docs" / "PICTURES.md"
PERFORMANCE = PROJECT_ROOT / "docs" / "PERFORMANCE.md"
BENCH_RESULTS = PROJECT_ROOT / "results" / "bench.json"

#: The benchmark's figures as the document names them, with their targets.
BENCH_ROWS = (
    ("dataset build, five databases, patient split", "dataset_build_s", "s",
     "<= 90 s"),
    ("the same with noisy copies of 30% of training beats",
     "dataset_build_noise0.3_s", "s", "-"),
    ("training throughput, ecgnet, batch 256", "train_images_per_s_ecgnet",
     "images/s", ">= 1,500"),
    ("the same with --lowres 0.2", "train_images_per_s_ecgnet_lowres0.2",
     "images/s", ">= 1,500"),
    ("the same with the published recipe's --lowres 0.2 --edge-blank 0.1",
     "train_images_per_s_ecgnet_lowres0.2_edge0.1", "images/s", ">= 1,500"),
    ("one picture, warm model (PNG -> class), p50", "predict_latency_p50_ms",
     "ms", "<= 20 ms"),
    ("one picture, p95", "predict_latency_p95_ms", "ms", "-"),
    ("batch prediction", "predict_batch_images_per_s", "images/s", ">= 3,000"),
    ("a 30-minute record (mitdb 100, both leads) read as predict-record reads it",
     "record_30min_s", "s", "<= 10 s"),
    ("of which the QRS delineation (NeuroKit2)", "record_30min_delineate_s", "s",
     "-"),
    ("a 12-lead page, 200 dpi, read as analyze-page reads it", "page_s", "s",
     "<= 3 s"),
    ("of which the digitisation", "page_digitise_s", "s", "-"),
    ("a full training run, 1 epoch, whole random split", "full_train_1_epoch_s",
     "s", "-"),
    ("its peak memory (max RSS)", "full_train_peak_rss_gb", "GB", "<= 4 GB"),
)  # fmt: skip
THUMB_RESULTS = PROJECT_ROOT / "results" / "thumbnails.json"
PAGE_RESULTS = PROJECT_ROOT / "results" / "page_eval.json"
QRS_RESULTS = PROJECT_ROOT / "results" / "qrs_widths_train.json"
DATA_DOC = PROJECT_ROOT / "docs" / "DATA.md"
BLOCK_RESULTS = PROJECT_ROOT / "results" / "block_stage.json"
STRIP_RESULTS = PROJECT_ROOT / "artifacts" / "default" / "patient" / "strip_eval.json"


def _pct(v: float) -> str:
    return f"{100 * v:.1f}%"


def headline_block(metrics: dict) -> str:
    """The README's first-screen figures: the published recipe on new patients,
    per class, beside the always-Normal baseline (from ``metrics.json``)."""
    p = metrics["protocols"]["patient"]
    b = p["baseline"]
    n_pat, n = len(p["test_records"]), p["n"]
    ci = p["ci"]
    lines = [
        f"On **new patients** ({n_pat} test patients, {n:,} beats and VF "
        "windows, each picture alone; 95% intervals over patients), the "
        "published recipe scores:",
        "",
        "| | accuracy | macro recall | macro F1 |",
        "|---|---|---|---|",
        f"| this model | {_pct(p['accuracy'])} [{_pct(ci['accuracy'][0])}, "
        f"{_pct(ci['accuracy'][1])}] | {_pct(p['macro_recall'])} | "
        f"{_pct(p['macro_f1'])} |",
        f"| always {b['predicts']} (baseline) | {_pct(b['accuracy'])} | "
        f"{_pct(b['macro_recall'])} | {_pct(b['macro_f1'])} |",
        "",
        "| class | recall (found) | precision (calls right) | test beats |",
        "|---|---|---|---|",
    ]
    for c in CLASSES:
        d = p["per_class"][c]
        lines.append(
            f"| {c} ({SHORT_NAMES[c]}) | {_pct(d['recall'])} | "
            f"{_pct(d['precision'])} | {int(d['support']):,} |"
        )
    rr = p.get("rr_context")
    if rr:
        pac = rr["per_class"]["Premature Atrial Contraction"]
        lines += [
            "",
            "With the rhythm step (records, signals and strips, where a beat's "
            f"neighbours are known): macro recall {_pct(rr['macro_recall'])}, "
            f"PAC recall {_pct(pac['recall'])} at precision "
            f"{_pct(pac['precision'])}.",
        ]
    blk = p.get("block_stage")
    if blk:
        t = blk["test"]
        pic, both = t["picture"], t["both_mean"]
        lines += [
            "",
            "With the block stage (records and signals, where each beat's QRS is "
            "measured: its duration and its shape in every lead the signal has; "
            f"mean of {len(blk['seeds'])} seeds; the same beats without it in "
            "brackets): "
            f"LBBB recall {_pct(both['lbbb_recall'])} ({_pct(pic['lbbb_recall'])}) "
            f"at precision {_pct(both['lbbb_precision'])} "
            f"({_pct(pic['lbbb_precision'])}); RBBB recall "
            f"{_pct(both['rbbb_recall'])} ({_pct(pic['rbbb_recall'])}) at "
            f"precision {_pct(both['rbbb_precision'])} "
            f"({_pct(pic['rbbb_precision'])}); Normal precision "
            f"{_pct(both['normal_precision'])} ({_pct(pic['normal_precision'])}); "
            f"macro recall {_pct(both['macro_recall'])} "
            f"({_pct(pic['macro_recall'])}).",
        ]
    same = metrics["protocols"].get("random")
    if same:
        lines += [
            "",
            "On a random 70:30 split by beat (patients seen in training, the "
            f"original report's protocol): accuracy {_pct(same['accuracy'])}, "
            f"macro F1 {_pct(same['macro_f1'])}. That compares with published "
            "figures; it is not what to expect on a new patient.",
        ]
    return "\n".join(lines)


def load_block(record: dict) -> str:
    """The load table of ``results/load.json``, with how it was measured."""
    return (
        f"`{record['command']}`, measured {record['measured']}; "
        f"{record['commit']}:\n\n" + load_table(record["rows"])
    )


def strip_block(d: dict) -> str:
    """The strip table of ``strip_eval.json`` (the patient model's strips)."""
    lines = [
        f"{d['n_strips']} strips of {d['seconds']:g} s of the held-out mitdb "
        f"records, {len(d['records'])} records; per style (SNR after "
        "the best shift, as in the PhysioNet/CinC Challenge 2024):",
        "",
        "| style | SNR dB (median) | beat Se % | beat PPV % | class accuracy % "
        "| class macro F1 % | unreadable strips |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, v in d["styles"].items():
        lines.append(
            f"| {name} | {v['snr_db_median']:.1f} | {100 * v['sensitivity']:.2f} | "
            f"{100 * v['ppv']:.2f} | {100 * v['class_accuracy']:.2f} | "
            f"{100 * v['class_macro_f1']:.2f} | {v['unreadable_strips']} |"
        )
    for key, what in (
        ("beat_image", "beat-image path, same beats, picture only"),
        (
            "beat_image_rhythm_strip",
            "beat-image path, + rhythm step on the strip's beats",
        ),
        ("beat_image_rhythm", "beat-image path, + rhythm step on the record's beats"),
    ):
        if key in d:
            b = d[key]
            lines.append(
                f"| {what} | - | - | - | {100 * b['accuracy']:.2f} | "
                f"{100 * b['macro_f1']:.2f} | - |"
            )
    return "\n".join(lines)


def bench_block(record: dict) -> str:
    """The speed and memory table of ``results/bench.json``."""
    r = record["results"]
    lines = [
        f"`{record['command']}`, measured {record['measured']} ({r['cpus']} CPUs):",
        "",
        "| figure | measured | target |",
        "|---|---|---|",
    ]
    for what, key, unit, target in BENCH_ROWS:
        if key not in r:
            continue
        v = r[key]
        shown = f"{v:,}" if isinstance(v, int) else f"{v:g}"
        rng = r.get(f"{key}_range")
        lines.append(
            f"| {what} | {shown} {unit}"
            + (f" ({rng})" if rng else "")
            + f" | {target} |"
        )
    return "\n".join(lines)


def thumb_block(d: dict) -> str:
    """The style test's thumbnail table (``results/thumbnails.json``): each
    style as each reading (a model folder and its route) reads it."""
    readings = d["readings"]
    lines = [
        f"Style test, {d['style_test_part']}; command: `{d['command']}`.",
        "",
        *(f"- {who}: `{r['model']}`" for who, r in readings.items()),
        "",
        "| style | read by | accuracy % | recall % per class | PAC answered "
        "'cannot be judged' % | span within 15 % |",
        "|---|---|---|---|---|---|",
    ]
    styles = next(iter(readings.values()))["per_style"]
    for style in styles:
        for who, rd in readings.items():
            r = rd["per_style"][style]
            rec = ", ".join(
                f"{SHORT_NAMES[c]} {100 * v:.0f}"
                for c, v in r["per_class_recall"].items()
            )
            nj = r["not_judged"].get("Premature Atrial Contraction", 0.0)
            sp = r.get("span_within_15")
            lines.append(
                f"| {style} | {who} | {100 * r['accuracy']:.1f} | {rec} | "
                f"{100 * nj:.0f} | {'-' if sp is None else f'{100 * sp:.0f}'} |"
            )
    return "\n".join(lines) + "\n"


def page_block(d: dict) -> str:
    """The page reader's figures on the development pages
    (``results/page_eval.json``)."""
    return (
        f"Command: `{d['command']}` (model `{d['model']}`).\n\n" + page_table(d) + "\n"
    )


def qrs_block(d: dict) -> str:
    """The measured QRS durations by database and class (``qrs-widths``)."""
    lines = [
        f"{d['part'].capitalize()} patients, up to {d['per_class']} beats a class "
        f"(seed {d['seed']}); command: `{d['command']}`.",
        "",
        "| database | class | beats | measured | median ms | quartiles ms "
        "| >= 120 ms % |",
        "|---|---|---|---|---|---|---|",
    ]
    for db, by_class in d["widths"].items():
        for c, v in by_class.items():
            if v["median_ms"] is None:
                med = quart = share = "-"
            else:
                med = f"{v['median_ms']:g}"
                quart = f"{v['q25_ms']:g}-{v['q75_ms']:g}"
                share = f"{100 * v['share_120']:.0f}"
            lines.append(
                f"| {db} | {SHORT_NAMES[c]} | {v['n']} | {v['measured']} | "
                f"{med} | {quart} | {share} |"
            )
    return "\n".join(lines) + "\n"


def block_widths_block(d: dict) -> str:
    """The measures that define a block, by database and class, on training
    patients (``fit-block``'s ``widths_train``; medians over patients)."""
    cmd = d.get("command", "python -m ecg_model fit-block RUN --out FILE")
    lines = [
        f"Training patients; command: `{cmd}`. Medians over each patient's "
        "median; ms at 250 Hz.",
        "",
        "| database | class | patients | QRS ms (delineator) | lead II envelope ms "
        "| lead II energy ms | V1 upward share | V1 terminal |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def cell(v) -> str:
        return "-" if v is None else f"{v:g}"

    for db, by_class in d["widths_train"].items():
        for c, v in by_class.items():
            lines.append(
                f"| {db} | {SHORT_NAMES[c]} | {v['patients']} | "
                + " | ".join(
                    cell(v[k])
                    for k in (
                        "qrs_ms",
                        "II_env_ms",
                        "II_energy_ms",
                        "V1_pos_frac",
                        "V1_terminal",
                    )
                )
                + " |"
            )
    return "\n".join(lines) + "\n"


def block_replace(text: str, name: str, body: str) -> str:
    """``text`` with its block ``name`` holding ``body``.

    Raises
    ------
    ValueError
        The text has no such block.
    """
    pat = re.compile(rf"(<!-- {name}:start -->\n)(.*?)(<!-- {name}:end -->)", re.S)
    if not pat.search(text):
        raise ValueError(f"no block {name!r}")
    return pat.sub(lambda m: m.group(1) + body.rstrip("\n") + "\n" + m.group(3), text)


#: (document, block name, how its body is made).
BLOCKS: list[tuple[Path, str, Callable[[], str]]] = [
    (README, "headline", lambda: headline_block(json_read(DEFAULT_METRICS))),
    (RELIABILITY, "load", lambda: load_block(json_read(LOAD_RESULTS))),
    (PICTURES, "strips", lambda: strip_block(json_read(STRIP_RESULTS))),
    (PICTURES, "thumbnails", lambda: thumb_block(json_read(THUMB_RESULTS))),
    (PICTURES, "pages", lambda: page_block(json_read(PAGE_RESULTS))),
    (DATA_DOC, "qrs", lambda: qrs_block(json_read(QRS_RESULTS))),
    (DATA_DOC, "block-widths", lambda: block_widths_block(json_read(BLOCK_RESULTS))),
    (PERFORMANCE, "bench", lambda: bench_block(json_read(BENCH_RESULTS))),
]


def docs_render() -> dict[Path, str]:
    """Every generated document as it should read: path -> text."""
    out: dict[Path, str] = {EXPERIMENTS_DOC: experiments_render(experiments_read())}
    for path, name, make in BLOCKS:
        text = out.get(path) or path.read_text(encoding="utf-8")
        out[path] = block_replace(text, name, make())
    return out


def docs_write() -> list[Path]:
    """Write every generated document that changed; returns those written."""
    done = []
    for path, text in docs_render().items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            atomic_write_text(path, text)
            done.append(path)
    return done
