"""Leave one database out: for each database, train on all the others, test on it.

Databases differ in rate, lead, recording hardware and who labelled them; a
model that scores well on new patients of the databases it trained on can still
fail on a new *database*, which is what a clinic's pictures are. The pipeline
reads: a patient-split dataset of every database -> for each database, a view
of it (the same images, linked) whose test part is that database's every
patient and whose training part is every other database's -> one run each with
the same configuration -> one table, per database and per class.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..core.errors import EcgError
from ..core.io import atomic_write_json, json_read
from ..data.dataset import lead_first, manifest_read
from .config import TrainConfig
from .runfolder import run_create
from .train import train_run

LODO_FILE = "lodo.json"


def lodo_view(root: Path, db: str, out: Path) -> int:
    """Make ``out`` a dataset folder over ``root``'s images testing on ``db``.

    Returns the number of its test images. The view links ``root``'s image
    folders, cache and ``dataset.json`` (nothing is copied) and writes its own
    manifest: every row of ``db`` is test, every other row train.
    """
    meta = manifest_read(root)
    held = (meta["database"].astype(str) == db).to_numpy()
    # The held-out database is seen through its first lead only, as a test
    # patient is; other leads of its training records (``extra_leads``) go.
    meta = meta[~held | lead_first(meta)].reset_index(drop=True)
    meta["split"] = np.where(meta["database"].astype(str) == db, "test", "train")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in ("train", "test", "cache.npz", "dataset.json"):
        if (root / name).exists():
            (out / name).symlink_to(root.resolve() / name)
    meta.to_csv(out / "manifest.csv", index=False)
    return int((meta["split"] == "test").sum())


def lodo_run(
    dataset: str | os.PathLike,
    config: TrainConfig,
    out: str | os.PathLike,
    databases: tuple[str, ...] = (),
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Train and test once per database held out; returns the summary.

    Parameters
    ----------
    dataset : path
        A dataset folder holding several databases (e.g. a ``--split patient``
        build of all five); its train/test assignment is ignored.
    config : TrainConfig
        The recipe of every run (``dataset`` and ``split`` are set per run).
    out : path
        Folder for the views, the runs and ``lodo.json``.
    databases : tuple of str
        Databases to hold out in turn; empty: every database in the dataset.

    Returns
    -------
    dict
        ``{"config", "dataset", "databases": {db: {"run", "n_test", "accuracy",
        "macro_recall", "macro_f1", "ci", "per_class": {class: {"recall",
        "precision", "support", "recall_ci"}}}}}`` over the classes ``db`` holds.
    """
    root, out = Path(dataset), Path(out)
    present = sorted(manifest_read(root)["database"].astype(str).unique())
    held = list(databases or present)
    missing = sorted(set(held) - set(present))
    if missing:
        raise EcgError(f"{root}: holds no images of {', '.join(missing)}")
    if len(present) < 2:
        raise EcgError(f"{root}: leave-one-database-out needs two databases or more")
    out.mkdir(parents=True, exist_ok=True)
    summary = {"config": config.to_json(), "dataset": str(root), "databases": {}}
    for i, db in enumerate(held):
        view = out / f"{db}-dataset"
        n_test = lodo_view(root, db, view)
        if progress:
            progress(f"{db} ({i + 1} of {len(held)}): testing on {n_test} images")
        run = run_create(
            replace(config, dataset=str(view), split=f"lodo-{db}"), runs=out / "runs"
        )
        st = train_run(run)
        if st["state"] != "finished":
            raise EcgError(f"{run}: {st['state']}: {st.get('error', '')}".rstrip(": "))
        m = json_read(run / "metrics.json")
        summary["databases"][db] = {
            "run": str(run),
            "n_test": m["n"],
            **{k: m[k] for k in ("accuracy", "macro_recall", "macro_f1")},
            "ci": m.get("ci", {}),
            "per_class": {
                c: {
                    k: d[k]
                    for k in ("recall", "precision", "support", "recall_ci")
                    if k in d
                }
                for c, d in m["per_class"].items()
                if d["support"] > 0
            },
        }
        # Written after each database: an interrupted series keeps what it did.
        atomic_write_json(out / LODO_FILE, summary)
    return summary
