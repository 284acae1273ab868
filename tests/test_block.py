"""The block stage (issue 25, parts 3-5): a beat's QRS measured in every lead,
a small model of Normal / LBBB / RBBB fitted with patients grouped, and what
it says where it cannot tell."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ecg_model.core.errors import EcgError
from ecg_model.data.qrs import (
    BEAT_FEATURES,
    SHAPE_FEATURES,
    beat_features,
    qrs_delineate,
    qrs_shape,
)
from ecg_model.inference.block import (
    BLOCK_FILE,
    block_apply,
    block_decide,
    block_describe,
    block_notes,
    block_read,
)
from ecg_model.training.block_fit import (
    LEAD_II_FEATURES,
    grouped_folds,
    patient_weights,
    stage_fit,
    stage_oof,
)

from .conftest import DATA, needs_data
from .test_qrs import FS, beats

SHAPE = {f: i for i, f in enumerate(SHAPE_FEATURES)}


def v1_lead(kind: str, hr: float = 70.0, dur_s: float = 20.0, fs: float = FS):
    """A synthetic V1 (mV): a normal rS, RBBB's rSR' (a late upward R'), or
    LBBB's broad QS (all downward); returns the signal and its R peaks."""
    t = np.arange(int(dur_s * fs)) / fs
    sig, peaks = np.zeros_like(t), []
    waves = {
        "normal": ((0.0, 0.3, 0.010), (0.03, -0.9, 0.012)),
        "rbbb": ((0.0, 0.3, 0.010), (0.03, -0.5, 0.010), (0.08, 0.8, 0.016)),
        "lbbb": ((0.02, -1.2, 0.035),),
    }[kind]
    for b in np.arange(0.5, dur_s - 0.5, 60.0 / hr):
        peaks.append(int(round(b * fs)))
        for mu, a, sd in waves:
            sig += a * np.exp(-0.5 * ((t - b - mu) / sd) ** 2)
    return sig, np.array(peaks)


def test_a_wide_qrs_measures_wider_than_a_narrow_one_in_every_measure():
    narrow, peaks = beats(80.0)
    wide, _ = beats(160.0)
    ms_n = np.nanmedian(qrs_delineate(narrow, FS, peaks)[2])
    ms_w = np.nanmedian(qrs_delineate(wide, FS, peaks)[2])
    env_n = np.nanmedian(qrs_shape(narrow, FS, peaks)[:, SHAPE["env_ms"]])
    env_w = np.nanmedian(qrs_shape(wide, FS, peaks)[:, SHAPE["env_ms"]])
    assert ms_w - ms_n >= 60  # 80 ms apart, within the delineator's 12 ms
    assert env_w > 1.5 * env_n
    # Amplitudes are shares of the peak-to-peak: the gain does not matter.
    a = qrs_shape(narrow, FS, peaks)
    b = qrs_shape(3 * narrow, FS, peaks)
    keep = [SHAPE[f] for f in SHAPE_FEATURES if f != "amp_mv"]
    np.testing.assert_allclose(a[:, keep], b[:, keep], atol=1e-6)
    np.testing.assert_allclose(b[:, SHAPE["amp_mv"]], 3 * a[:, SHAPE["amp_mv"]])


def test_v1_shapes_read_as_a_cardiologist_reads_them():
    got = {}
    for kind in ("normal", "rbbb", "lbbb"):
        sig, peaks = v1_lead(kind)
        got[kind] = np.nanmedian(qrs_shape(sig, FS, peaks), axis=0)
    # RBBB: the QRS ends upward (R'), late; normal rS ends downward.
    assert got["rbbb"][SHAPE["terminal"]] > 0.2
    assert got["normal"][SHAPE["terminal"]] < 0
    assert got["rbbb"][SHAPE["peak_at"]] > 0.6
    # LBBB: a broad QS, all downward, wider than the normal rS.
    assert got["lbbb"][SHAPE["pos_frac"]] < 0.1
    assert got["lbbb"][SHAPE["env_ms"]] > got["normal"][SHAPE["env_ms"]] + 30
    # RBBB has the notch of its rSR'.
    assert got["rbbb"][SHAPE["notches"]] >= 2


def test_beat_features_take_each_lead_by_name_and_nan_where_absent():
    ii, peaks = beats(100.0)
    v1, _ = v1_lead("rbbb")
    f = beat_features({"MLII": ii, "V2": v1}, FS, peaks, main="MLII")
    assert f.shape == (peaks.size, len(BEAT_FEATURES))
    col = {n: i for i, n in enumerate(BEAT_FEATURES)}
    inner = slice(2, -2)  # the edge beats may lack their ST-T window
    assert np.isfinite(f[inner, col["II_env_ms"]]).all()
    # V2 stands in for a missing V1 (mitdb's second lead); no V6, no I.
    assert np.nanmedian(f[:, col["V1_terminal"]]) > 0.2
    assert np.isnan(f[:, col["V6_env_ms"]]).all()
    assert np.isnan(f[:, col["I_env_ms"]]).all()


@needs_data
def test_real_block_beats_measure_120_ms_or_more_and_a_normal_one_less():
    from ecg_model.data.dataset import record_of

    med = {}
    for rn, sym in (("100", "N"), ("109", "L"), ("118", "R")):
        rec = record_of(DATA / "mitdb" / rn, "mitdb", FS)
        r = rec.ann_sample[[s == sym for s in rec.ann_symbol]][:150]
        med[sym] = np.nanmedian(qrs_delineate(rec.sig, FS, r)[2])
    assert med["N"] < 110
    assert med["L"] >= 120 and med["R"] >= 120


def synthetic_table(n_pat: int = 12, per: int = 30, seed: int = 0):
    """Lead II measures of Normal, LBBB and RBBB beats of ``n_pat`` patients a
    class: wide QRS for the blocks, a terminal S (negative) for RBBB."""
    rng = np.random.default_rng(seed)
    rows, y, g = [], [], []
    for c, (ms, term) in enumerate(((90, 0.2), (150, 0.1), (140, -0.3))):
        for p in range(n_pat):
            x = np.full((per, len(LEAD_II_FEATURES)), 0.0)
            x += rng.normal(0, 0.05, x.shape)
            x[:, 0] = ms + rng.normal(0, 8, per)
            x[:, LEAD_II_FEATURES.index("II_terminal")] += term
            rows.append(x)
            y += [c] * per
            g += [f"p{c}-{p}"] * per
    return np.vstack(rows), np.array(y), np.array(g)


def test_grouped_folds_never_put_a_patient_on_both_sides():
    x, y, g = synthetic_table()
    for tr, te in grouped_folds(y, g, seed=3):
        assert not set(g[tr]) & set(g[te])
        assert set(y[te]) == {0, 1, 2}  # stratified on the class


def test_patient_weights_give_each_patient_one_vote_in_its_class():
    y = np.array([0] * 100 + [0] + [1] * 3)
    g = np.array(["a"] * 100 + ["b"] + ["c"] * 3)
    w = patient_weights(y, g)
    assert w[:100].sum() == pytest.approx(w[100])  # 100 beats, one vote
    assert w[:101].sum() == pytest.approx(w[101:].sum())  # classes equal


@pytest.mark.parametrize("kind", ["logistic", "boosting"])
def test_the_stage_learns_a_block_from_few_patients_out_of_fold(kind):
    x, y, g = synthetic_table()
    p = stage_oof(x, y, g, kind, seed=0, folds=4)
    assert np.isfinite(p).all()
    assert (p.argmax(axis=1) == y).mean() > 0.9


def write_stage(run, kind: str = "logistic"):
    """A block.json in ``run``, fitted on the synthetic lead II table."""
    x, y, g = synthetic_table()
    st = stage_fit(x, y, patient_weights(y, g), kind)
    st = {k: v for k, v in st.items() if k != "model"}
    st["features"] = list(LEAD_II_FEATURES)
    (run / BLOCK_FILE).write_text(json.dumps({"stage": st}))
    return block_read(run)


def test_the_stage_divides_a_conducted_beat_and_leaves_ectopy_alone(tmp_path):
    stage = write_stage(tmp_path)
    col = {n: i for i, n in enumerate(BEAT_FEATURES)}
    f = np.full((3, len(BEAT_FEATURES)), np.nan)
    f[:, col["qrs_ms"]] = (150, 150, 150)
    f[:, col["II_terminal"]] = 0.1
    f[:, col["II_env_ms"]] = 0.0
    probs = np.array(
        [
            [0.9, 0.05, 0.0, 0.0, 0.05, 0.0],  # called Normal: re-divided
            [0.1, 0.0, 0.0, 0.9, 0.0, 0.0],  # called PVC: left alone
            [0.9, 0.05, 0.0, 0.0, 0.05, 0.0],  # nothing measured: left alone
        ],
        np.float32,
    )
    f[2] = np.nan
    out, q = block_apply(probs, f, stage)
    assert out[0].argmax() == 1  # a wide QRS without terminal S: LBBB
    assert out[0, [0, 1, 4]].sum() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_array_equal(out[1:], probs[1:])
    assert np.isnan(q[1:]).all() and np.isfinite(q[0]).all()
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)


def test_a_wide_beat_whose_side_cannot_be_told_says_so():
    q = np.array([[0.1, 0.45, 0.45], [0.05, 0.9, 0.05], [0.9, 0.05, 0.05]])
    notes = block_notes(q, np.array([150.0, 150.0, 90.0]))
    assert "left or right cannot be told" in notes[0]
    assert notes[1] == "" and notes[2] == ""
    assert "cannot be ruled out" in block_notes(q[2:], np.array([140.0]))[0]
    # Called a block by the picture, with no lead that tells the side.
    none = np.full((2, 3), np.nan)
    said = block_notes(
        none,
        np.full(2, 150.0),
        ["Right Bundle Branch Block"] * 2,
        np.array([False, True]),
    )
    assert "lacks; left or right cannot be told" in said[0] and said[1] == ""
    d = block_decide(["Normal"] * 3, np.repeat(q[:1], 3, 0), np.full(3, 150.0), ())
    assert d["block"] == "unsure"
    d = block_decide(
        ["Left Bundle Branch Block"] * 3,
        np.repeat(q[1:2], 3, 0),
        np.full(3, 150.0),
        ("II",),
    )
    assert d["block"] == "LBBB" and d["median_qrs_ms"] == 150.0
    said = block_describe(d)
    assert said.startswith("left bundle branch block")
    assert "median QRS 150 ms on lead II" in said
    # A single-lead signal under a stage of every lead: no decision, and why.
    none = block_decide(
        ["Normal"] * 3, np.full((3, 3), np.nan), np.full(3, 90.0), ("main",)
    )
    assert none["block"] is None
    assert "which this signal lacks" in block_describe(none)


def test_a_damaged_block_file_is_refused_by_name(tmp_path):
    assert block_read(tmp_path) is None
    (tmp_path / BLOCK_FILE).write_text(json.dumps({"stage": {"kind": "magic"}}))
    with pytest.raises(EcgError, match="block.json"):
        block_read(tmp_path)
    (tmp_path / BLOCK_FILE).write_text(
        json.dumps({"stage": {"kind": "logistic", "features": ["height_cm"]}})
    )
    with pytest.raises(EcgError, match="height_cm"):
        block_read(tmp_path)
    (tmp_path / BLOCK_FILE).write_text(
        json.dumps({"stage": {"kind": "boosting", "features": ["qrs_ms"]}})
    )
    with pytest.raises(EcgError, match="block_model.pkl"):
        block_read(tmp_path)


def test_a_stage_of_every_lead_leaves_a_single_lead_beat_to_the_picture(tmp_path):
    from ecg_model.training.block_fit import CANDIDATES

    x, y, g = synthetic_table()
    feats = CANDIDATES["boosting-all"][1]
    col = {n: i for i, n in enumerate(BEAT_FEATURES)}
    full = np.full((len(y), len(BEAT_FEATURES)), np.nan)
    full[:, [col[f] for f in LEAD_II_FEATURES]] = x
    full[:, col["V1_env_ms"]] = 80.0  # V1 measured on every training beat
    st = stage_fit(
        full[:, [col[f] for f in feats]], y, patient_weights(y, g), "logistic"
    )
    st["features"] = list(feats)
    probs = np.tile(np.array([[0.9, 0.05, 0.0, 0.0, 0.05, 0.0]], np.float32), (2, 1))
    f = full[[y.tolist().index(1)] * 2].copy()  # an LBBB beat, twice
    f[1, col["V1_env_ms"]] = np.nan  # the second from a single-lead signal
    out, q = block_apply(probs, f, st)
    assert np.isfinite(q[0]).all() and np.isnan(q[1]).all()
    np.testing.assert_array_equal(out[1], probs[1])


@needs_data
def test_a_signal_with_v1_never_says_it_lacks_the_side_leads(tiny_run, tmp_path):
    import shutil

    from ecg_model.inference.predict import Predictor
    from ecg_model.training.block_fit import CANDIDATES

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    x, y, g = synthetic_table()
    feats = CANDIDATES["boosting-all"][1]
    col = {n: i for i, n in enumerate(BEAT_FEATURES)}
    full = np.full((len(y), len(BEAT_FEATURES)), np.nan)
    full[:, [col[f] for f in LEAD_II_FEATURES]] = x
    full[:, col["V1_env_ms"]] = 80.0
    xs = full[:, [col[f] for f in feats]]
    st = stage_fit(xs, y, patient_weights(y, g), "logistic")
    st["features"] = list(feats)
    (run / BLOCK_FILE).write_text(json.dumps({"stage": st}))
    p = Predictor(run)
    lbbb = np.zeros((1, 6), np.float32)
    lbbb[0, 1] = 1.0  # the picture calls every beat LBBB
    p.predict_arrays = lambda imgs: np.repeat(lbbb, len(imgs), axis=0)
    cut = int(0.38 * FS)  # the first beat 0.12 s from the start, as in A0044
    ii, v1 = beats(150.0)[0][cut:], v1_lead("lbbb")[0][cut:]
    both = p.predict_signal(ii, FS, {"V1": v1}, "II")
    assert both.time_s[0] < 0.15  # the edge beat is found
    assert not any("lacks" in n for n in both.notes)  # edge beats included
    alone = p.predict_signal(ii, FS)
    said = [n for n, c in zip(alone.notes, alone.predicted) if "Left" in c]
    assert said and all("which this signal lacks" in n for n in said)


def test_block_shapes_name_v1s_terminal_r_and_v6s_terminal_s():
    """RBBB's V1 ends upright (R'), its V6 ends in a slurred S; a lead's
    panel that shows none of the beats is left out (NaN there)."""
    from ecg_model.inference.block import block_shapes

    fs = 500.0
    t = np.arange(int(10 * fs)) / fs
    beats = np.arange(1.0, 9.5, 1.0)  # s
    v1 = np.zeros_like(t)
    v6 = np.zeros_like(t)
    for b in beats:
        # V1: small r, S, then a late tall R' (rSR'); V6: R, then a wide S.
        v1 += 0.2 * np.exp(-0.5 * ((t - b + 0.03) / 0.008) ** 2)
        v1 -= 0.5 * np.exp(-0.5 * ((t - b) / 0.012) ** 2)
        v1 += 0.9 * np.exp(-0.5 * ((t - b - 0.06) / 0.015) ** 2)
        v6 += 1.0 * np.exp(-0.5 * ((t - b) / 0.01) ** 2)
        v6 -= 0.8 * np.exp(-0.5 * ((t - b - 0.05) / 0.02) ** 2)
    r = np.round((beats + 0.0) * fs).astype(int)
    said = block_shapes({"V1": v1, "V6": v6}, fs, r)
    assert said["V1"].startswith("terminal R'")
    assert said["V6"].startswith("terminal S")
    # A panel's NaN outside it: only the beats it shows are read.
    half = v1.copy()
    half[: int(5 * fs)] = np.nan
    assert (
        said["V1"].split(";")[0]
        == block_shapes({"V1": half}, fs, r)["V1"].split(";")[0]
    )
    assert block_shapes({"V1": half}, fs, r)["V1"].endswith("4 beats")
    assert "V6" not in block_shapes({"V1": half}, fs, r)
