"""Why the model said what it said: Grad-CAM over the last convolution.

Grad-CAM (Selvaraju et al. 2017) weights each channel of the layer named
``last_conv`` by the mean gradient of the chosen class's probability with respect
to it, keeps the positive evidence, and upsamples the map to the picture.
"""

from __future__ import annotations

import numpy as np

#: The layer Grad-CAM reads: every registry model names its last convolution so.
LAST_CONV = "last_conv"


def gradcam(model, image: np.ndarray, class_index: int | None = None) -> np.ndarray:
    """Grad-CAM heat map for one model-ready picture.

    Parameters
    ----------
    model : keras.Model
        A model with a layer named ``last_conv`` (every registry model has one).
    image : np.ndarray
        uint8 picture, shape ``(image_height, image_width)``.
    class_index : int, optional
        Class to explain; default the predicted one.

    Returns
    -------
    np.ndarray
        float32 heat map in ``[0, 1]``, shape ``(image_height, image_width)``.
    """
    import keras
    import tensorflow as tf

    conv = (
        model.get_layer(LAST_CONV)
        if LAST_CONV in [layer.name for layer in model.layers]
        else None
    )
    if conv is None:
        raise ValueError(f"model {model.name!r} has no layer named {LAST_CONV!r}")
    grad_model = keras.Model(model.inputs, [conv.output, model.output])
    x = tf.convert_to_tensor(image.astype(np.float32)[None, ..., None])  # (1, h, w, 1)
    with tf.GradientTape() as tape:
        fmap, probs = grad_model(x, training=False)  # (1, fh, fw, c), (1, 6)
        k = int(tf.argmax(probs[0])) if class_index is None else int(class_index)
        score = probs[:, k]
    grads = tape.gradient(score, fmap)  # (1, fh, fw, c)
    weights = tf.reduce_mean(grads, axis=(1, 2))  # (1, c)
    cam = tf.nn.relu(
        tf.reduce_sum(fmap * weights[:, None, None, :], axis=-1)
    )  # (1, fh, fw)
    cam = tf.image.resize(
        cam[..., None], image.shape[:2], method="bilinear"
    )  # (1, h, w, 1)
    cam = cam.numpy()[0, ..., 0]
    top = float(cam.max())
    return (cam / top if top > 0 else cam).astype(np.float32)


def heat_colors(cam: np.ndarray) -> np.ndarray:
    """The overlay's colour scale: 0 white -> 1 red, float RGB 0..255, ``(..., 3)``."""
    return np.stack([np.ones_like(cam), 1 - cam, 1 - cam], axis=-1) * 255


def colorbar(width: int = 256, height: int = 14) -> np.ndarray:
    """The Grad-CAM colour scale as a picture, weak (left) to strong (right).

    Returns uint8 RGB, shape ``(height, width, 3)``.
    """
    ramp = np.tile(np.linspace(0.0, 1.0, width, dtype=np.float32), (height, 1))
    return heat_colors(ramp).astype(np.uint8)


def overlay(image: np.ndarray, cam: np.ndarray, opacity: float = 0.5) -> np.ndarray:
    """Blend a heat map (red = strong evidence) over a gray picture.

    Returns uint8 RGB, shape ``(h, w, 3)``.
    """
    gray = np.repeat(image[..., None].astype(np.float32), 3, axis=2)  # (h, w, 3)
    heat = heat_colors(cam)  # (h, w, 3): white -> red
    a = float(np.clip(opacity, 0, 1)) * cam[..., None]
    return np.clip(gray * (1 - a) + heat * a, 0, 255).astype(np.uint8)
