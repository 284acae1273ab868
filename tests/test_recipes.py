"""Experiments as committed records: the generated page, the published recipe,
and figures checked against the files they cite."""

from __future__ import annotations

import json

import pytest

from ecg_model.cli import config_from, parser_build
from ecg_model.core.classes import CLASSES
from ecg_model.core.errors import EcgError
from ecg_model.training.config import TrainConfig
from ecg_model.training.recipes import (
    EXPERIMENTS_DOC,
    experiments_read,
    experiments_render,
    recipe_config,
    recipe_published,
    recipes_available,
)

from .conftest import ROOT

DEFAULT = ROOT / "artifacts" / "default"


def test_experiments_page_is_what_the_records_render():
    recs = experiments_read()
    looks = [r["look"] for r in recs]
    assert looks == list(range(1, len(recs) + 1)) and len(recs) >= 29  # each once
    assert EXPERIMENTS_DOC.read_text() == experiments_render(recs), (
        "docs/EXPERIMENTS.md differs from the records: python -m ecg_model docs"
    )


def test_the_published_recipe_reproduces_the_published_runs_configuration():
    rec = recipe_published()
    assert rec is not None and rec.name == "21-edge-blank.json"
    assert list(recipes_available().values())[0] == rec  # offered first
    patient = TrainConfig.from_json(
        json.loads((DEFAULT / "patient" / "config.json").read_text())
    )
    assert recipe_config(rec) == patient  # the new-patient run, exactly
    # `train --recipe FILE --split all`: the published default, exactly.
    a = parser_build().parse_args(["train", "--recipe", str(rec), "--split", "all"])
    default = TrainConfig.from_json(json.loads((DEFAULT / "config.json").read_text()))
    assert config_from(a, recipe_config(a.recipe)) == default
    a = parser_build().parse_args(["train", "--recipe", str(rec), "--seed", "3"])
    assert config_from(a, recipe_config(a.recipe)) == patient.replace(seed=3)


def test_a_record_without_training_is_no_recipe():
    with pytest.raises(EcgError, match="no training configuration"):
        recipe_config(ROOT / "experiments" / "25-signal-check.json")


def test_figures_agree_with_the_committed_file_they_cite():
    m = json.loads((DEFAULT / "metrics.json").read_text())
    reruns = {r["seed"]: r for r in m["reruns"]}
    checked = 0
    for r in experiments_read():
        if "artifacts/default/metrics.json" not in r["figures_source"]:
            continue
        run = reruns[r["seeds"][0]]
        assert r["runs"] == [run["run"]]
        f = r["figures"]
        for k in ("accuracy", "macro_recall", "macro_f1"):
            assert f[k][0] == pytest.approx(run[k], abs=5e-5), (r["look"], k)
        for c in CLASSES:
            for k in ("recall", "precision"):
                assert f["per_class"][c][k] == pytest.approx(
                    run["per_class"][c][k], abs=5e-5
                ), (r["look"], c, k)
        checked += 1
    assert checked == 4  # looks 21, 26, 27, 28


def test_options_are_declared_once_for_every_command():
    p = parser_build()
    for cmd in ("train", "lodo", "signal-check"):
        a = p.parse_args([cmd, "--dataset", "d", "--cap", "Normal=5", "--seed", "2"])
        cfg = config_from(a)
        assert cfg.class_caps == {"Normal": 5} and cfg.seed == 2
    a = p.parse_args(["train", "--no-augment", "--lowres", "0.2"])
    assert config_from(a) == TrainConfig(augment=False, lowres=0.2)
    with pytest.raises(EcgError, match="lowres"):
        config_from(p.parse_args(["train", "--lowres", "2"]))
