"""The six rhythm classes: the one source of truth for names, order and sources.

Every other module (dataset build, models, metrics, CLI, dashboard) imports the
class list from here, so the output order of a model and the column order of
every table agree.
"""

from __future__ import annotations

#: Class names in model output order (the machine-readable contract).
CLASSES: tuple[str, ...] = (
    "Normal",
    "Left Bundle Branch Block",
    "Premature Atrial Contraction",
    "Premature Ventricular Contraction",
    "Right Bundle Branch Block",
    "Ventricular Fibrillation",
)

#: The class of flutter/fibrillation windows (episodes, not beats).
VF_CLASS: str = CLASSES[-1]

#: MIT-BIH beat annotation symbol -> class name.
BEAT_SYMBOLS: dict[str, str] = {
    "N": "Normal",
    "L": "Left Bundle Branch Block",
    "A": "Premature Atrial Contraction",
    "V": "Premature Ventricular Contraction",
    "R": "Right Bundle Branch Block",
    "!": "Ventricular Fibrillation",
}

#: vfdb rhythm labels (aux_note of '+' annotations) that mean flutter/fibrillation.
VF_RHYTHMS: frozenset[str] = frozenset({"(VF", "(VFL", "(VFIB"})

#: Short labels for tables and chart axes, same order as CLASSES.
SHORT_NAMES: dict[str, str] = {
    "Normal": "N",
    "Left Bundle Branch Block": "LBBB",
    "Premature Atrial Contraction": "PAC",
    "Premature Ventricular Contraction": "PVC",
    "Right Bundle Branch Block": "RBBB",
    "Ventricular Fibrillation": "VF",
}

#: One colour per class, used the same way on every chart and overlay.
CLASS_COLORS: dict[str, str] = {
    "Normal": "#4c78a8",
    "Left Bundle Branch Block": "#f58518",
    "Premature Atrial Contraction": "#54a24b",
    "Premature Ventricular Contraction": "#e45756",
    "Right Bundle Branch Block": "#b279a2",
    "Ventricular Fibrillation": "#9d755d",
}

N_CLASSES = len(CLASSES)


def class_index(name: str) -> int:
    """Return the output index of class ``name`` (raises ValueError if unknown)."""
    try:
        return CLASSES.index(name)
    except ValueError:
        raise ValueError(
            f"unknown class {name!r}; expected one of: {', '.join(CLASSES)}"
        ) from None


#: Other names users give the classes' folders (lower case, without spaces,
#: underscores, hyphens or dots), beyond the names and short names above.
CLASS_ALIASES: dict[str, str] = {
    "n": "Normal",
    "nor": "Normal",
    "norm": "Normal",
    "normalbeat": "Normal",
    "nsr": "Normal",
    "sinus": "Normal",
    "l": "Left Bundle Branch Block",
    "lbb": "Left Bundle Branch Block",
    "leftbundlebranch": "Left Bundle Branch Block",
    "a": "Premature Atrial Contraction",
    "apc": "Premature Atrial Contraction",
    "apb": "Premature Atrial Contraction",
    "sveb": "Premature Atrial Contraction",
    "atrialpremature": "Premature Atrial Contraction",
    "atrialprematurebeat": "Premature Atrial Contraction",
    "v": "Premature Ventricular Contraction",
    "vpc": "Premature Ventricular Contraction",
    "pvb": "Premature Ventricular Contraction",
    "veb": "Premature Ventricular Contraction",
    "ventricularpremature": "Premature Ventricular Contraction",
    "ventricularprematurebeat": "Premature Ventricular Contraction",
    "r": "Right Bundle Branch Block",
    "rbb": "Right Bundle Branch Block",
    "rightbundlebranch": "Right Bundle Branch Block",
    "!": "Ventricular Fibrillation",
    "vfl": "Ventricular Fibrillation",
    "vfib": "Ventricular Fibrillation",
    "flutter": "Ventricular Fibrillation",
    "ventricularflutter": "Ventricular Fibrillation",
    "ventricularflutterfibrillation": "Ventricular Fibrillation",
}


def _key(name: str) -> str:
    k = "".join(ch for ch in name.lower() if ch not in " _-.")
    return k


def class_from_name(name: str) -> str | None:
    """The class a folder name means, or None: the class names and short names
    (``LBBB``), MIT-BIH symbols (``L``) and common abbreviations (``APC``,
    ``VFL``), whatever the case, spaces, underscores or hyphens, singular or
    plural (``Premature Ventricular Contractions``)."""
    table = {_key(c): c for c in CLASSES}
    table |= {_key(s): c for c, s in SHORT_NAMES.items()}
    table |= CLASS_ALIASES
    k = _key(name)
    for cand in (
        k,
        k[:-1] if k.endswith("s") else None,
        k[:-2] if k.endswith("es") else None,
    ):
        if cand and cand in table:
            return table[cand]
    return None
