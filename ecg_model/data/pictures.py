"""Read any picture file safely: size limits before decoding, every mode to RGB.

Used by inference (uploads) and by dataset loading (folders of pictures drawn by
other software), so both decode a picture the same way.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..core.errors import EcgError

#: Largest picture accepted, pixels (a 20000 x 20000 upload is refused before decoding).
MAX_PIXELS = 40_000_000
#: Largest file accepted, bytes.
MAX_BYTES = 50 * 1024 * 1024
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "WEBP", "GIF", "TIFF")
#: File extension -> the format its content must have (a TIFF named .png is
#: refused rather than read as something it does not say it is).
EXTENSIONS = {
    "png": "PNG",
    "jpg": "JPEG",
    "jpeg": "JPEG",
    "bmp": "BMP",
    "webp": "WEBP",
    "gif": "GIF",
    "tif": "TIFF",
    "tiff": "TIFF",
}


def image_read(src: str | os.PathLike | bytes, name: str | None = None) -> np.ndarray:
    """Decode a picture file into RGB uint8, shape ``(h, w, 3)``.

    The EXIF orientation is applied first (the picture as viewers show it);
    transparent pixels are put on white; palette, gray, 16-bit and CMYK
    pictures are converted. ``src`` is a path or the file's bytes (``name``
    labels errors).

    Raises
    ------
    EcgError
        Empty, truncated, not a picture, unsupported format, or too large.
    """
    label = name or (str(src) if not isinstance(src, bytes) else "upload")
    try:
        data = src if isinstance(src, bytes) else Path(src).read_bytes()
    except FileNotFoundError:
        raise EcgError(f"{label}: file not found") from None
    except IsADirectoryError:
        raise EcgError(f"{label}: is a folder, not an image") from None
    except OSError as e:
        raise EcgError(f"{label}: cannot read file ({e.strerror or e})") from None
    if len(data) == 0:
        raise EcgError(f"{label}: empty file (0 bytes)")
    if len(data) > MAX_BYTES:
        raise EcgError(
            f"{label}: file too large ({len(data) / 1e6:.0f} MB; limit "
            f"{MAX_BYTES / 1e6:.0f} MB)"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            if im.format not in IMAGE_FORMATS:
                raise EcgError(
                    f"{label}: unsupported image format {im.format}; "
                    f"use PNG, JPEG, BMP or WebP"
                )
            ext = Path(label).suffix.lower().lstrip(".")
            if ext in EXTENSIONS and EXTENSIONS[ext] != im.format:
                raise EcgError(
                    f"{label}: the file is a {im.format} picture named .{ext}; "
                    "rename or convert it"
                )
            frames = int(getattr(im, "n_frames", 1) or 1)
            if frames > 1:
                raise EcgError(
                    f"{label}: an animated or multi-page picture ({frames} frames); "
                    "save the frame to classify as a single picture"
                )
            w, h = im.size
            # Checked from the header, before any pixel is decoded.
            if w * h > MAX_PIXELS:
                raise EcgError(
                    f"{label}: image too large ({w}x{h} pixels; limit "
                    f"{MAX_PIXELS / 1e6:.0f} megapixels)"
                )
            im.load()
            # Upright as every viewer shows it: a phone's JPEG is stored
            # sideways or upside down with an EXIF orientation tag.
            im = ImageOps.exif_transpose(im)
    except EcgError:
        raise
    except UnidentifiedImageError:
        raise EcgError(
            f"{label}: not an image (PNG, JPEG, BMP or WebP expected)"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise EcgError(f"{label}: image too large (decompression bomb)") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise EcgError(f"{label}: truncated or corrupt image ({e})") from None
    if im.mode in ("RGBA", "LA", "PA") or (
        im.mode == "P" and "transparency" in im.info
    ):
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, rgba)
    elif im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        lo, hi = float(a.min()), float(a.max())
        a = (a - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(a)
        im = Image.fromarray(a.astype(np.uint8))
    return np.asarray(im.convert("RGB"), dtype=np.uint8)
