"""Grad-CAM: shape, range, and the overlay."""

from __future__ import annotations

import numpy as np

from ecg_model.inference.explain import gradcam, overlay
from ecg_model.inference.predict import Predictor

from .conftest import needs_data
from .test_predict import beat_picture


@needs_data
def test_gradcam_map_and_overlay(tiny_run):
    p = Predictor(tiny_run)
    img = beat_picture()
    cam = gradcam(p.model, img)
    assert cam.shape == img.shape and cam.dtype == np.float32
    assert 0.0 <= cam.min() and cam.max() <= 1.0
    for k in range(6):  # every class can be explained
        assert np.isfinite(gradcam(p.model, img, k)).all()
    rgb = overlay(img, cam, 0.6)
    assert rgb.shape == (*img.shape, 3) and rgb.dtype == np.uint8
    # Zero opacity leaves the picture as it was.
    assert np.array_equal(overlay(img, cam, 0.0)[..., 0], img)
