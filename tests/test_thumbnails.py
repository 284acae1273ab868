"""One-beat thumbnails (issue 26, part 1): drawn as other software draws them,
built into a dataset, and read by a lone-beat model where a run has one."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from ecg_model.core.errors import EcgError
from ecg_model.data.render import (
    RenderSpec,
    ThumbSpec,
    image_trace,
    qrs_runs,
    thumb_spec_random,
    thumbnail_draw,
    trace_beats,
)

from .conftest import DATA, needs_data

FS = 250.0


def beat(fs: float = FS, span_s: float = 0.6, r_mv: float = 1.2) -> np.ndarray:
    """A synthetic beat centred in ``span_s``: a 90 ms QRS of ``r_mv`` mV and a
    T wave 0.25 s after it, mV at ``fs``."""
    t = np.arange(int(span_s * fs)) / fs - span_s / 2
    qrs = r_mv * np.exp(-0.5 * (t / 0.015) ** 2)
    tw = 0.3 * np.exp(-0.5 * ((t - 0.25) / 0.04) ** 2)
    return qrs + tw


def test_a_thumbnail_is_a_grey_anti_aliased_line_of_the_size_asked():
    img = thumbnail_draw(beat(), FS, ThumbSpec(width=192, height=128, grey=90))
    assert img.shape == (128, 192) and img.dtype == np.uint8
    # Line pixels at the pen's grey, edges between it and the paper.
    assert img.min() >= 90 - 1 and 100 < np.median(img[img < 255]) < 255
    assert ((img > 95) & (img < 250)).sum() > 50
    # The beat is centred: the QRS's column is within 5% of the middle.
    lo, hi, q = image_trace(img, centre_line=True)
    assert q.found and len(qrs_runs(lo, hi)) == 1
    assert abs(trace_beats(lo, hi)[0] / lo.size - 0.5) < 0.05


def test_a_tall_qrs_is_clipped_at_the_fixed_scale():
    tall = thumbnail_draw(beat(r_mv=3.0), FS, ThumbSpec(mv_above=1.5))
    short = thumbnail_draw(beat(r_mv=1.0), FS, ThumbSpec(mv_above=1.5))
    assert (tall[0] < 200).any()  # the line leaves through the top row
    assert not (short[0] < 200).any()


def test_random_thumbnails_span_the_sizes_spans_and_greys_asked():
    rng = np.random.default_rng(0)
    specs = [thumb_spec_random(rng) for _ in range(200)]
    spans = np.array([s.span_s for s in specs])
    assert spans.min() >= 0.4 and spans.max() <= 1.2 and np.ptp(spans) > 0.6
    assert min(s.width for s in specs) >= 64 and max(s.width for s in specs) <= 256
    assert len({s.grey for s in specs}) > 50
    assert 0.3 < np.mean([s.mv_above < 2 for s in specs]) < 0.7  # clipped share
    with pytest.raises(ValueError, match="span_s"):
        ThumbSpec(span_s=0.01)


@pytest.fixture(scope="module")
def lone_run(tmp_path_factory):
    """A one-epoch lone-beat model on thumbnails of two mitdb records."""
    if not (DATA / "mitdb" / "207.hea").exists():
        pytest.skip(f"PhysioNet data not found at {DATA}")
    from ecg_model.data.dataset import BuildOptions, dataset_build
    from ecg_model.training.config import TrainConfig
    from ecg_model.training.runfolder import run_create
    from ecg_model.training.train import train_run

    out = tmp_path_factory.mktemp("thumbs") / "ds"
    spec = RenderSpec(image_width=128, view="thumbnail")
    rep = dataset_build(
        out,
        BuildOptions(records=("mitdb/100", "mitdb/207"), caps={"Normal": 300}),
        spec,
        data=DATA,
        workers=2,
    )
    assert rep["n_images"] > 300
    cfg = TrainConfig(dataset=str(out), epochs=1, batch_size=64, seed=1)
    run = run_create(cfg, tmp_path_factory.mktemp("runs"))
    assert train_run(run)["state"] == "finished"
    return run


@needs_data
def test_a_thumbnail_dataset_holds_pictures_read_back_across_the_width(lone_run):
    import json

    from ecg_model.data.dataset import dataset_spec

    ds = json.loads((lone_run / "config.json").read_text())["dataset"]
    assert dataset_spec(ds).view == "thumbnail"
    pre = json.loads((lone_run / "preprocessing.json").read_text())
    assert pre["view"] == "thumbnail" and pre["image_width"] == 128


@needs_data
def test_a_thumbnail_goes_to_the_lone_beat_model_and_a_window_does_not(
    lone_run, tiny_run, tmp_path
):
    from ecg_model.inference.predict import Predictor
    from ecg_model.styles import style_draw

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    shutil.copytree(lone_run, run / "lone")
    pred = Predictor(run)
    assert pred.lone is not None and pred.lone.spec.view == "thumbnail"
    thumb = thumbnail_draw(beat(), FS, ThumbSpec())
    p = pred.predict_picture(thumb, "thumb")
    assert p.span.source == "lone" and "lone-beat model" in p.span.describe()
    assert p.image.shape == (64, 128)  # the lone model's input, not the window's
    assert p.to_json()["span_s"] is None  # no span was assumed
    # A 2.4 s window of three beats is read by the window model, as before.
    sig = np.tile(beat(span_s=0.8), 3)
    win = pred.predict_file(style_draw(sig, FS, "thick-black"), "window")
    assert win.span.source == "window" and win.image.shape == (64, 256)


@needs_data
def test_a_lone_folder_drawn_as_windows_is_refused_by_name(tiny_run, tmp_path):
    from ecg_model.inference.predict import Predictor

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    shutil.copytree(tiny_run, run / "lone")  # a window model where lone/ is
    with pytest.raises(EcgError, match="lone.*not a lone-beat model"):
        Predictor(run)


def test_a_thin_grey_clipped_thumbnail_is_traced_across_its_width():
    # A 1 px grey anti-aliased pen breaks into column-wide pieces along steep
    # strokes; the trace must still run from edge to edge (it once kept the
    # largest piece's neighbourhood: half the beat).
    spec = ThumbSpec(width=192, height=128, grey=90, line_px=1.0, mv_above=1.0)
    img = thumbnail_draw(beat(span_s=0.53, r_mv=2.5), FS, spec)
    lo, hi, q = image_trace(img, centre_line=True)
    assert q.found and lo.size >= 0.95 * spec.width
    assert len(qrs_runs(lo, hi)) == 1


@pytest.fixture(scope="module")
def span_model():
    from ecg_model.core.io import default_model_dir
    from ecg_model.inference.span import span_model_read

    model = span_model_read(default_model_dir())
    if model is None:
        pytest.skip("the default model has no span model (span.keras)")
    return model


@needs_data
@pytest.mark.parametrize("span_s", [0.5, 0.8, 1.1])
def test_thumbnails_of_a_mitdb_slice_are_read_back_at_their_span(span_model, span_s):
    from ecg_model.data.dataset import beats_sample

    spec = RenderSpec()
    rng = np.random.default_rng(0)
    df, sigs = beats_sample(DATA, "test", 20, rng, spec, ("mitdb/100",))
    normal = df[df["class"] == "Normal"]
    assert len(normal) == 20
    ratios = []
    for db, rn, s, _ in normal.itertuples(index=False):
        half = int(span_s * spec.fs / 2)
        seg = sigs[(db, rn)][s - half : s + half]
        lo, hi, q = image_trace(
            thumbnail_draw(seg, spec.fs, ThumbSpec(span_s=span_s)), True
        )
        ratios.append(span_model.predict(lo, hi) / span_s)
    # One beat's span read from its shape: the median within 15%, and most
    # within 30% (the test patients' figures: results/span_model.json).
    assert abs(np.median(ratios) - 1) <= 0.15
    assert np.mean(np.abs(np.array(ratios) - 1) <= 0.3) >= 0.7


@needs_data
def test_fit_span_writes_a_model_the_predictor_reads_a_lone_beat_with(
    tiny_run, tmp_path
):
    import json

    from ecg_model.inference.predict import Predictor
    from ecg_model.training.span_fit import span_fit

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    info = span_fit(
        run, DATA, per_class=15, epochs=1, records=("mitdb/100", "mitdb/207")
    )
    assert (run / "span.keras").exists() and info["runs"][0]["n"] > 0
    saved = json.loads((run / "span.json").read_text())
    assert 0 <= saved["within_15_mean"] <= 1 and saved["seeds"] == [0]
    pred = Predictor(run)
    p = pred.predict_picture(thumbnail_draw(beat(), FS, ThumbSpec()), "thumb")
    # One beat, no grid: its span read from its shape, within the fitted range.
    assert p.span.source == "shape" and 0.4 <= p.span.duration_s <= 1.2
    assert "estimated from the beat's shape" in p.span.describe()
    # A given span still wins.
    given = pred.predict_picture(thumbnail_draw(beat(), FS, ThumbSpec()), "t", 0.6)
    assert given.span.source == "given"
