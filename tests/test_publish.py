"""Publishing a default model folder, and the committed default model itself."""

from __future__ import annotations

import json
import shutil

import pytest

from ecg_model.core.classes import CLASSES, SHORT_NAMES
from ecg_model.core.errors import EcgError
from ecg_model.inference.predict import Predictor
from ecg_model.publish import default_publish, examples_write
from ecg_model.training.rhythm_fit import rhythm_fit_run

from .conftest import DATA, ROOT, needs_data


@needs_data
def test_publish_default_folder(tiny_run, tiny_dataset, tmp_path):
    dest = tmp_path / "default"
    m = default_publish(tiny_run, tiny_run, seed_random=tiny_run, dest=dest)
    for k in ("accuracy", "macro_recall", "macro_f1"):
        assert k in m["protocols"]["random"] and k in m["protocols"]["patient"]
    assert set(m["protocols"]["patient"]["per_class"]["Normal"]) >= {
        "precision",
        "recall",
        "f1",
        "support",
    }
    assert "accuracy" in m["baseline"]["random"] and "seed" in m
    card = (dest / "MODEL_CARD.md").read_text()
    assert "Not a medical device" in card and "| random |" in card
    assert Predictor(dest).classes == CLASSES and Predictor(dest / "patient")
    # A patient run with a rhythm step publishes it, with its figures beside.
    pat = tmp_path / "pat"
    shutil.copytree(tiny_run, pat)
    rhythm_fit_run(pat, DATA, folds=0)
    m = default_publish(tiny_run, pat, dest=dest)
    # The seed network's rows stay beside the unchanged random model.
    assert m["seed"]["random"] and m["runs"]["seed_random"] == tiny_run.name
    assert (dest / "patient" / "rhythm.json").exists()
    assert not (dest / "rhythm.json").exists()
    assert "pac_ratio_threshold" in m["protocols"]["patient"]["rr_context"]
    assert "rhythm step" in (dest / "MODEL_CARD.md").read_text()
    assert Predictor(dest / "patient").pac_ratio_threshold is not None
    # ...and a later run without one takes the stale step away.
    default_publish(tiny_run, tiny_run, dest=dest)
    assert not (dest / "patient" / "rhythm.json").exists()
    # A default trained on every patient: it is the model predict uses, the
    # random model moves aside, and a calibration of the old model goes.
    (dest / "calibration.json").write_text("{}")
    lodo = tmp_path / "lodo"
    lodo.mkdir()
    one = {
        "n_test": 10,
        "accuracy": 0.5,
        "macro_recall": 0.5,
        "macro_f1": 0.5,
        "per_class": {"Normal": {"recall": 0.5, "support": 10}},
    }
    (lodo / "lodo.json").write_text(json.dumps({"databases": {"svdb": one}}))
    m = default_publish(tiny_run, tiny_run, dest=dest, all_run=tiny_run, lodo=lodo)
    assert m["default"] == "all" and m["runs"]["all"] == tiny_run.name
    assert (dest / "random" / "model.keras").exists()
    assert not (dest / "calibration.json").exists()
    card = (dest / "MODEL_CARD.md").read_text()
    assert "every patient" in card and "| svdb | 10 |" in card
    assert "test patients held out" in card
    assert m["build"]["extra_leads"] is False and "other lead" not in card
    assert "noise" not in card
    # Beats an adapter leaves out are named on the card.
    assert "N beats of svdb 841, 857 are left out" in " ".join(card.split())
    # A recipe whose dataset drew training patients' other leads says so.
    xl, fake = tmp_path / "xl", tmp_path / "xl-dataset"
    shutil.copytree(tiny_run, xl)
    fake.mkdir()
    info = json.loads((tiny_dataset / "dataset.json").read_text())
    info["options"].update(extra_leads=True, noise=0.3)
    (fake / "dataset.json").write_text(json.dumps(info))
    cfg = json.loads((xl / "config.json").read_text())
    (xl / "config.json").write_text(json.dumps({**cfg, "dataset": str(fake)}))
    default_publish(tiny_run, tiny_run, dest=dest, all_run=xl)
    card = (dest / "MODEL_CARD.md").read_text()
    assert "every other lead" in card and "30% of each training record" in card
    assert "validation by beat" in card
    default_publish(tiny_run, tiny_run, dest=dest)
    assert not (dest / "random").exists()
    ex = examples_write(tiny_dataset, tmp_path / "ex", per_class=1)
    assert {p.name.split("_")[0] for p in ex} == set(SHORT_NAMES.values())


def test_committed_default_model_contract():
    d = ROOT / "artifacts" / "default"
    if not (d / "model.keras").exists():
        pytest.skip("no committed default model yet")
    pre = json.loads((d / "preprocessing.json").read_text())
    assert pre["classes"] == list(CLASSES)
    for k in ("fs", "window_before_s", "window_after_s", "image_height", "image_width"):
        assert k in pre
    m = json.loads((d / "metrics.json").read_text())
    for proto in ("random", "patient"):
        p = m["protocols"][proto]
        for k in ("accuracy", "macro_recall", "macro_f1"):
            assert 0 < p[k] <= 1
        assert set(p["per_class"]) == set(CLASSES)
    assert sum(f.stat().st_size for f in d.rglob("*") if f.is_file()) < 20e6


def test_default_model_classifies_the_bundled_examples():
    """A round-trip check of the shipped files (PNG -> span -> trace redraw ->
    model): each example, drawn at the contract, gets the class the model gives
    its pixels directly. Not a performance figure: the default model trained on
    these patients, and PACs need the rhythm step a single picture lacks."""
    import numpy as np
    from PIL import Image

    d = ROOT / "artifacts"
    examples = sorted((d / "examples").glob("*.png"))
    if not (d / "default" / "model.keras").exists() or not examples:
        pytest.skip("no committed default model or examples yet")
    p = Predictor(d / "default")
    short = {v: k for k, v in SHORT_NAMES.items()}
    right = 0
    for f in examples:
        got = p.predict_file(f)
        img = np.asarray(Image.open(f).convert("L"))  # (h, w)
        assert img.shape == (p.spec.image_height, p.spec.image_width), f.name
        direct = CLASSES[int(p.predict_arrays(img[None])[0].argmax())]
        assert got.predicted_class == direct, f.name
        assert got.span.source == "window", f.name  # drawn at the contract
        right += got.predicted_class == short[f.name.split("_")[0]]
    assert right >= len(examples) / 2, f"{right}/{len(examples)}"


@needs_data
def test_publish_shows_how_far_reruns_of_the_patient_recipe_swing(tiny_run, tmp_path):
    dest = tmp_path / "default"
    again, other = tmp_path / "again", tmp_path / "other"
    for run, change in ((again, {"seed": 7}), (other, {"epochs": 3})):
        shutil.copytree(tiny_run, run)
        cfg = json.loads((run / "config.json").read_text())
        (run / "config.json").write_text(json.dumps({**cfg, **change}))
    m = json.loads((again / "metrics.json").read_text())
    m["macro_recall"] = 0.123
    m["per_class"]["Normal"]["recall"] = 0.0
    (again / "metrics.json").write_text(json.dumps(m))
    # Another recipe is not a rerun: refused, naming what differs.
    with pytest.raises(EcgError, match="not a rerun.*differs in epochs"):
        default_publish(tiny_run, tiny_run, dest=dest, reruns=(other,))
    m = default_publish(tiny_run, tiny_run, dest=dest, reruns=(again,))
    first, second = m["reruns"]
    assert first["run"] == tiny_run.name and second["seed"] == 7
    assert second["macro_recall"] == 0.123
    pub = m["protocols"]["patient"]
    assert first["macro_recall"] == pub["macro_recall"]
    card = " ".join((dest / "MODEL_CARD.md").read_text().split())
    assert "One training among several" in card

    def pct(v: float) -> str:  # the card's percentages
        return f"{100 * v:.2f}"

    lo, hi = sorted((0.123, pub["macro_recall"]))
    assert f"| range | | {pct(min(first['accuracy'], second['accuracy']))}" in card
    assert f"{pct(lo)}-{pct(hi)}" in card
    normal = pub["per_class"]["Normal"]["recall"]
    assert f"{pct(0.0)}-{pct(normal)} /" in card
    # Published again with the same patient run, the reruns stay.
    assert default_publish(tiny_run, tiny_run, dest=dest)["reruns"] == m["reruns"]


def test_the_committed_model_card_is_what_its_template_renders():
    from ecg_model.publish import model_card

    d = ROOT / "artifacts" / "default"
    new = model_card(json.loads((d / "metrics.json").read_text()), d).splitlines()
    old = (d / "MODEL_CARD.md").read_text().splitlines()
    # All but the line that dates the rendering.
    assert [x for i, x in enumerate(old) if i != 2] == [
        x for i, x in enumerate(new) if i != 2
    ]
