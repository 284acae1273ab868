"""Line drawings held as bits: 1/8 of the memory of uint8 images.

The renderer draws pure black on white, so a built dataset is stored as its ink
packed 1 bit a pixel (``np.packbits`` along the columns, big bit order). A full
build at 256 columns is 3.2 GB as uint8 images and 0.4 GB as bits; training
keeps the bits and unpacks each batch inside the ``tf.data`` graph
(:func:`bits_unpack_tf`), so a full run stays under the memory target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def bits_unpack(bits: np.ndarray, width: int) -> np.ndarray:
    """uint8 images ``(..., h, width)`` (ink 0, paper 255) from ink bits
    ``(..., h, ceil(width / 8))``."""
    x = np.unpackbits(bits, axis=-1, count=width)  # ink 1, paper 0
    np.subtract(1, x, out=x)  # in place: ink 0, paper 1
    x *= 255
    return x


@dataclass(frozen=True)
class Packed:
    """Binary images ``(n, h, width)`` kept as ink bits ``(n, h, ceil(width / 8))``.

    Reads like the uint8 array it stands for where the project uses one:
    ``len``, ``shape``, an integer index gives one uint8 image ``(h, width)``,
    a slice, boolean mask or index array gives another ``Packed`` (the bits
    only are copied), and ``np.asarray`` / ``astype`` unpack.
    """

    bits: np.ndarray  # (n, h, ceil(width / 8)) uint8
    width: int

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.bits), self.bits.shape[1], self.width)

    dtype = np.dtype(np.uint8)
    ndim = 3

    def __len__(self) -> int:
        return len(self.bits)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return bits_unpack(self.bits[key], self.width)  # (h, width)
        return Packed(self.bits[key], self.width)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        x = bits_unpack(self.bits, self.width)
        return x if dtype is None else x.astype(dtype)

    def astype(self, dtype) -> np.ndarray:
        return np.asarray(self, dtype=dtype)


def images_concat(parts: list) -> np.ndarray | Packed:
    """Concatenate image sets along the first axis, staying packed when all are."""
    if parts and all(isinstance(p, Packed) for p in parts):
        widths = {p.width for p in parts}
        if len(widths) == 1:
            return Packed(np.concatenate([p.bits for p in parts]), widths.pop())
    return np.concatenate([np.asarray(p) for p in parts])


def bits_unpack_tf(bits, width: int):
    """:func:`bits_unpack` as TensorFlow ops, for a batch inside a ``tf.data`` map.

    ``bits``: uint8 tensor ``(b, h, wb)``; returns float32 ``(b, h, width)``
    with ink 0 and paper 255.
    """
    import tensorflow as tf

    shifts = tf.constant([7, 6, 5, 4, 3, 2, 1, 0], tf.uint8)  # big bit order
    b = tf.bitwise.bitwise_and(tf.bitwise.right_shift(bits[..., None], shifts), 1)
    s = tf.shape(bits)
    b = tf.reshape(b, [s[0], s[1], s[2] * 8])[:, :, :width]  # (b, h, width)
    return (1.0 - tf.cast(b, tf.float32)) * 255.0
