"""Model registry: build a network by name.

Every model takes the project's beat images as they are stored, uint8 values
``0..255`` as float, shape ``(batch, image_height, image_width, 1)``, and does
its own scaling inside the graph, so a saved ``model.keras`` needs nothing but
the drawing contract in ``preprocessing.json``. The last convolution is named
``last_conv`` so Grad-CAM can find it.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

from ..core.classes import N_CLASSES
from ..inference.explain import LAST_CONV

ModelFn = Callable[[tuple[int, int]], keras.Model]
MODELS: dict[str, ModelFn] = {}


def register(name: str) -> Callable[[ModelFn], ModelFn]:
    """Decorator adding a model builder to :data:`MODELS` under ``name``."""

    def deco(fn: ModelFn) -> ModelFn:
        MODELS[name] = fn
        return fn

    return deco


def model_build(name: str, image_size: tuple[int, int]) -> keras.Model:
    """Build model ``name`` for images of ``image_size`` = (height, width) pixels."""
    if name not in MODELS:
        raise ValueError(
            f"unknown model {name!r}; expected one of: {', '.join(MODELS)}"
        )
    return MODELS[name](image_size)


@register("seed")
def seed_build(image_size: tuple[int, int]) -> keras.Model:
    """The original report's network, layer for layer, behind an adapter.

    The report fed 64x64 RGB images scaled to 0..1 (white background). The
    adapter resizes the project's image to 64x64 and repeats the gray channel,
    so the network itself is exactly the report's: Conv2D 32 3x3 relu,
    MaxPool 2x2, Flatten, three Dense 600 relu, Dense 6 softmax.
    """
    inp = keras.Input((*image_size, 1), name="image")
    x = layers.Resizing(64, 64, interpolation="area")(inp)  # (b, 64, 64, 1)
    x = layers.Concatenate()([x, x, x])  # (b, 64, 64, 3): gray as RGB
    x = layers.Rescaling(1.0 / 255)(x)
    x = layers.Conv2D(32, 3, activation="relu", name=LAST_CONV)(x)  # (b, 62, 62, 32)
    x = layers.MaxPooling2D(2)(x)  # (b, 31, 31, 32)
    x = layers.Flatten()(x)  # (b, 30752)
    for i in range(3):
        x = layers.Dense(600, activation="relu", name=f"dense_{i + 1}")(x)
    out = layers.Dense(N_CLASSES, activation="softmax", name="probabilities")(x)
    return keras.Model(inp, out, name="seed")


def _conv_block(x, filters: int, name: str | None = None):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=name)(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x)


def _ecgnet_input(image_size: tuple[int, int]) -> tuple:
    """The ecgnet family's input and its ink map ``(b, h, w, 1)``."""
    inp = keras.Input((*image_size, 1), name="image")
    # Trace = 1, background = 0: the ink is the signal, the paper is nothing.
    return inp, layers.Rescaling(-1.0 / 255, offset=1.0)(inp)


def _ecgnet_top(inp, x, name: str) -> keras.Model:
    """Blocks and head of the ecgnet family over a stem's map ``(b, h', w', c)``."""
    x = _conv_block(x, 32)  # (b, h', w', 32)
    x = layers.MaxPooling2D(2)(x)  # (b, h'/2, w'/2, 32)
    x = _conv_block(x, 32, name=LAST_CONV)
    x = layers.MaxPooling2D(2)(x)  # (b, h'/4, w'/4, 32)
    x = layers.Flatten()(x)  # (b, h'/4 * w'/4 * 32) = (b, 1024) for a 16x32 map
    x = layers.Dropout(0.3)(x)
    x = layers.Dense(64, activation="relu")(x)
    x = layers.Dropout(0.2)(x)
    out = layers.Dense(N_CLASSES, activation="softmax", name="probabilities")(x)
    return keras.Model(inp, out, name=name)


@register("ecgnet")
def ecgnet_build(image_size: tuple[int, int]) -> keras.Model:
    """The default: a patch stem, two batch-normed blocks, a small head.

    Sized for a 2-core CPU. The stem cuts the picture into patches 4 rows high
    and 1/32 of the window wide (4 columns at 128, 8 at 256: 75 ms either way)
    and embeds each in 16 channels (a line drawing has little detail at the
    pixel scale): one cheap step to a map of ``(h/4, 32)`` whatever the width,
    so the wider contract costs the blocks nothing more. Each patch still
    weighs every column it covers, so a QRS one column wider changes its
    embedding. At 256 columns it trains 2.7x as many images a second as 4x4
    patches (``ecgnet_p4``; ``python -m ecg_model.bench``). Batch norm sits
    where the maps are small, where it costs little. The head flattens instead
    of global pooling because *where* things are matters: the beat sits at a
    fixed column, and its neighbours' distance from it is the RR interval that
    separates premature beats.
    """
    inp, x = _ecgnet_input(image_size)
    pw = max(4, image_size[1] // 32)
    x = layers.Conv2D(16, (4, pw), strides=(4, pw), activation="relu", name="patches")(
        x
    )  # (b, h/4, w/pw, 16) = (b, 16, 32, 16) at 64x128 and 64x256
    return _ecgnet_top(inp, x, "ecgnet")


@register("ecgnet_p4")
def ecgnet_p4_build(image_size: tuple[int, int]) -> keras.Model:
    """``ecgnet`` with 4x4 patches at any width: the network of the first
    256-column runs, kept to reproduce their figures."""
    inp, x = _ecgnet_input(image_size)
    x = layers.Conv2D(16, 4, strides=4, activation="relu", name="patches")(
        x
    )  # (b, h/4, w/4, 16)
    return _ecgnet_top(inp, x, "ecgnet_p4")


@register("ecgnet_v1")
def ecgnet_v1_build(image_size: tuple[int, int]) -> keras.Model:
    """The first default, kept to reproduce its figures: ``ecgnet`` with a 5x5
    and a 3x3 strided convolution for a stem instead of 4x4 patches."""
    inp, x = _ecgnet_input(image_size)
    x = layers.Conv2D(8, 5, strides=2, padding="same", activation="relu")(
        x
    )  # (b, h/2, w/2, 8)
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(
        x
    )  # (b, h/4, w/4, 16)
    return _ecgnet_top(inp, x, "ecgnet_v1")
