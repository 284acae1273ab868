"""ecg_model: six-class ECG beat-image classification from PhysioNet recordings.

The package is in layers; each imports only from the layers above it in this
list, never from below (``tests/test_architecture.py`` checks it):

- ``core``: the class list, errors, settings, atomic writes;
- ``data``: databases (one adapter each), signals, the drawing contract,
  picture decoding, datasets;
- ``inference``: prediction, the rhythm step applied, strips, Grad-CAM;
- ``training``: configuration, models, runs, metrics, fitting the rhythm step;
- ``app``: what the dashboard's pages use;
- the modules at the top (``cli``, ``bench``, ``publish``, ``strip_eval``,
  ``styles``): command line and tooling.

``ecg_model.Predictor`` is the inference entry point
(``ecg_model.inference.predict.Predictor``), imported on first use so that
``import ecg_model`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .core.classes import CLASSES

if TYPE_CHECKING:
    from .inference.predict import Predictor

__all__ = ["CLASSES", "Predictor"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # PEP 562: the predictor module pulls in PIL, SciPy and wfdb; load it on use.
    if name == "Predictor":
        from .inference.predict import Predictor

        return Predictor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
