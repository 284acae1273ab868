"""ecg_model: six-class ECG beat-image classification from PhysioNet recordings.

Modules: ``classes`` (the class list), ``signals`` (records, cleaning, beats),
``render`` (signal/picture -> beat image), ``dataset`` (build and load),
``models`` (registry), ``config`` and ``train`` (runs), ``evaluate`` (metrics),
``predict`` (inference), ``styles`` (foreign-style test pictures), ``cli``.
"""

from .classes import CLASSES

__all__ = ["CLASSES"]
__version__ = "0.1.0"
