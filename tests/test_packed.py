"""Ink bits stand in for uint8 line drawings: same pictures, 1/8 of the memory."""

from __future__ import annotations

import numpy as np

from ecg_model.data.packed import Packed, images_concat
from ecg_model.data.render import RenderSpec, windows_render
from ecg_model.training.train import tf_dataset


def _drawings(n: int, width: int) -> np.ndarray:
    spec = RenderSpec(image_width=width)
    t = np.arange(30 * spec.fs) / spec.fs
    sig = np.sin(2 * np.pi * 1.1 * t) + 0.3 * np.sin(2 * np.pi * 7 * t)  # mV
    centres = np.linspace(spec.before, sig.size - spec.after - 1, n).astype(int)
    return windows_render(sig, centres, spec)  # (n, h, w) uint8, 0 or 255


def test_packed_reads_like_the_images_it_stands_for():
    x = _drawings(40, 252)  # a width that is not a multiple of 8
    assert set(np.unique(x)) <= {0, 255}
    p = Packed(np.packbits(x == 0, axis=-1), 252)
    assert p.shape == x.shape and len(p) == len(x) and p.bits.nbytes * 7 < x.nbytes
    assert np.array_equal(np.asarray(p), x)
    assert np.array_equal(p[3], x[3])  # one image, unpacked
    mask = np.arange(40) % 3 == 0
    for key in (slice(5, 17), mask, np.array([7, 2, 2, 30])):
        sub = p[key]
        assert isinstance(sub, Packed)
        assert np.array_equal(np.asarray(sub), x[key])
    assert np.array_equal(p[2:6].astype(np.float32), x[2:6].astype(np.float32))
    both = images_concat([p[:10], p[10:]])
    assert isinstance(both, Packed) and np.array_equal(np.asarray(both), x)
    mixed = images_concat([p[:10], x[10:]])
    assert isinstance(mixed, np.ndarray) and np.array_equal(mixed, x)


def test_training_pipeline_unpacks_bits_to_the_same_batches():
    x = _drawings(64, 256)
    y = np.arange(64) % 6
    p = Packed(np.packbits(x == 0, axis=-1), 256)
    a = next(iter(tf_dataset(x, y, None, 64, shuffle=False, augment=False, seed=0)))
    b = next(iter(tf_dataset(p, y, None, 64, shuffle=False, augment=False, seed=0)))
    assert b[0].shape == (64, 64, 256, 1)
    assert np.array_equal(a[0].numpy(), b[0].numpy())
    assert np.array_equal(a[1].numpy(), b[1].numpy())
    # Augmented batches from bits are drawings too: ink 0 or paper 255 only.
    c = next(
        iter(
            tf_dataset(
                p, y, None, 64, shuffle=True, augment=True, seed=0, edge_blank=0.5
            )
        )
    )
    assert set(np.unique(c[0].numpy())) <= {0.0, 255.0}
