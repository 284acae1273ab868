"""Experiments as committed records, and the recipes they hold.

Each look at the test patients is one file ``experiments/NN-name.json``: the
question, the command and training configuration (where it was a training),
seeds and run ids, the headline figures with where they were copied from, and
the decision (with the rule written before it trained, where there was one).
A record with a ``train`` configuration is a recipe:
``python -m ecg_model train --recipe experiments/21-edge-blank.json [--seed N]``
trains it again, and the Train page offers every recipe, the published one
first. ``docs/EXPERIMENTS.md`` is rendered from the records
(``python -m ecg_model docs``), never written by hand.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..core.classes import CLASSES, SHORT_NAMES
from ..core.errors import EcgError
from ..core.io import PROJECT_ROOT, json_read
from .config import TrainConfig

EXPERIMENTS_DIR = PROJECT_ROOT / "experiments"
EXPERIMENTS_DOC = PROJECT_ROOT / "docs" / "EXPERIMENTS.md"
#: Keys every record has.
RECORD_KEYS = (
    "look",
    "name",
    "question",
    "protocol",
    "command",
    "train",
    "seeds",
    "runs",
    "figures",
    "figures_source",
    "decision",
    "rule",
)


def record_check(rec: object, label: str) -> dict:
    """A record as read, checked: its keys, a whole-number look, figures as
    ``[value, low, high]`` fractions and per-class recall/precision, and a
    ``train`` that makes a :class:`TrainConfig`.

    Raises
    ------
    EcgError
        Anything else, naming the file.
    """
    if not isinstance(rec, dict):
        raise EcgError(f"{label}: not a JSON object")
    missing = [k for k in RECORD_KEYS if k not in rec]
    if missing:
        raise EcgError(f"{label}: missing {', '.join(missing)}")
    if not isinstance(rec["look"], int):
        raise EcgError(f"{label}: look is not a whole number")
    f = rec["figures"]
    ok = isinstance(f, dict) and all(
        isinstance(f.get(k), list)
        and len(f[k]) == 3
        and all(isinstance(v, (int, float)) and 0 <= v <= 1 for v in f[k])
        for k in ("accuracy", "macro_recall", "macro_f1")
    )
    pc = f.get("per_class") if isinstance(f, dict) else None
    ok = ok and isinstance(pc, dict) and set(pc) == set(CLASSES)
    if not ok:
        raise EcgError(f"{label}: figures are not [value, low, high] per headline")
    if rec["train"] is not None:
        try:
            TrainConfig.from_json(rec["train"])
        except (TypeError, ValueError) as e:
            raise EcgError(f"{label}: train is not a configuration ({e})") from None
    return rec


def experiments_read(folder: str | os.PathLike | None = None) -> list[dict]:
    """Every record of ``folder`` (default ``experiments/``), in look order;
    each carries its file as ``path``."""
    folder = Path(folder) if folder else EXPERIMENTS_DIR
    out = []
    for p in sorted(folder.glob("*.json")):
        rec = record_check(json_read(p), str(p.name))
        out.append({**rec, "path": p})
    return sorted(out, key=lambda r: r["look"])


def recipe_config(path: str | os.PathLike, seed: int | None = None) -> TrainConfig:
    """The training configuration a record holds (its seed replaced by
    ``seed`` where given).

    Raises
    ------
    EcgError
        Not a record, or a record of no training (a comparison, a signal check).
    """
    p = Path(path)
    rec = record_check(json_read(p), str(p))
    if rec["train"] is None:
        raise EcgError(f"{p}: look {rec['look']} holds no training configuration")
    cfg = TrainConfig.from_json(rec["train"])
    return cfg if seed is None else cfg.replace(seed=int(seed))


def recipes_available(folder: str | os.PathLike | None = None) -> dict[str, Path]:
    """Label -> record of every recipe, the published one first."""
    recs = [r for r in experiments_read(folder) if r["train"] is not None]
    recs.sort(key=lambda r: (not r.get("published", False), -r["look"]))
    return {f"look {r['look']}: {r['name']}": r["path"] for r in recs}


def recipe_published(folder: str | os.PathLike | None = None) -> Path | None:
    """The record of the published recipe, if one is marked."""
    for r in experiments_read(folder):
        if r.get("published"):
            return r["path"]
    return None


def _pct(v: float) -> str:
    return f"{100 * v:.1f}"


def experiments_render(records: list[dict[str, Any]]) -> str:
    """``docs/EXPERIMENTS.md`` from the records: a table of every look, then
    each look's question, recipe, runs, decision and rule."""
    head = [
        "# Experiments",
        "",
        "Every look at the test patients of the new-patient protocol, one record "
        "each in `experiments/`. This page is written by `python -m ecg_model "
        "experiments` from those records (a test fails when it differs); each "
        "record says where its figures were copied from. Figures in percent, "
        "95% intervals over test patients in brackets; per class, recall / "
        "precision.",
        "",
        "| look | record | accuracy | macro recall | macro F1 | "
        + " | ".join(SHORT_NAMES[c] for c in CLASSES)
        + " | decision |",
        "|---|---|---|---|---|" + "---|" * len(CLASSES) + "---|",
    ]
    for r in records:
        f = r["figures"]
        cells = [
            f"{_pct(f[k][0])} [{_pct(f[k][1])}, {_pct(f[k][2])}]"
            for k in ("accuracy", "macro_recall", "macro_f1")
        ]
        pc = [
            f"{_pct(f['per_class'][c]['recall'])} / "
            f"{_pct(f['per_class'][c]['precision'])}"
            for c in CLASSES
        ]
        decision = r["decision"].split(":")[0]
        head.append(
            f"| {r['look']} | [{r['path'].name}](../experiments/{r['path'].name}) | "
            + " | ".join(cells + pc)
            + f" | {decision} |"
        )
    body = []
    for r in records:
        body += ["", f"## Look {r['look']}: {r['name']}", "", r["question"] + "."]
        if r["command"]:
            body += ["", f"Command: `{r['command']}`"]
        if r["seeds"]:
            body += ["", "Seeds: " + ", ".join(str(s) for s in r["seeds"])]
        if r["runs"]:
            body += ["", "Runs: " + ", ".join(f"`{x}`" for x in r["runs"])]
        if r["rule"]:
            body += ["", f"Rule, written before it trained: {r['rule']}."]
        body += [
            "",
            f"Decision: {r['decision']}.",
            "",
            f"Figures from: {r['figures_source']}.",
        ]
    return "\n".join(head + body) + "\n"
