"""Altair charts for the dashboard: one colour per class, the same on every page.

Pages call these and show the result; all shaping of data happens here.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from ..core.classes import CLASS_COLORS, CLASSES, SHORT_NAMES

CLASS_SCALE = alt.Scale(domain=list(CLASSES), range=[CLASS_COLORS[c] for c in CLASSES])


class _Checked(alt.LayerChart):
    """A layered chart whose specification is built by this module's code alone,
    the same every time but for its numbers: it was checked against the
    Vega-Lite schema by the tests, so it skips Altair's schema check when the
    dashboard draws it (a third of the CPU an upload costs the server)."""

    def to_dict(self, *args, validate: bool = False, **kwargs):
        return super().to_dict(*args, validate=validate, **kwargs)


def probability_chart(probabilities: dict[str, float]) -> alt.Chart:
    """Horizontal bars of the six probabilities, sorted, labelled with values."""
    df = pd.DataFrame(
        {
            "class": list(probabilities),
            "probability": [float(v) for v in probabilities.values()],
        }
    )
    df = df.sort_values("probability", ascending=False)
    order = list(df["class"])
    base = alt.Chart(df).encode(
        y=alt.Y(
            "class:N",
            sort=order,
            title=None,
            axis=alt.Axis(labelLimit=260, labelOverlap=False),
        ),
        x=alt.X(
            "probability:Q",
            scale=alt.Scale(domain=[0, 1.1]),
            title="probability",
            axis=alt.Axis(values=[0, 0.25, 0.5, 0.75, 1.0], format="%"),
        ),
    )
    bars = base.mark_bar().encode(
        color=alt.Color("class:N", scale=CLASS_SCALE, legend=None),
        tooltip=["class", alt.Tooltip("probability:Q", format=".3f")],
    )
    text = base.mark_text(align="left", dx=3).encode(
        text=alt.Text("probability:Q", format=".1%")
    )
    layered = (bars + text).properties(height=200)
    return _Checked(
        **{k: v for k, v in layered._kwds.items() if v is not alt.Undefined}
    )


def counts_chart(counts: dict[str, int], title: str = "predicted class") -> alt.Chart:
    """Bars of how many items fell in each class."""
    df = pd.DataFrame(
        {"class": list(CLASSES), "count": [int(counts.get(c, 0)) for c in CLASSES]}
    )
    return _class_bars(df, "count", title, 180)


def distribution_chart(manifest: pd.DataFrame) -> alt.Chart:
    """Images per class: a bar for each split side by side (test paler)."""
    df = manifest.groupby(["split", "class"]).size().reset_index(name="images")
    return _class_bars(df, "images", None, 260, group="split")


def _class_bars(
    df: pd.DataFrame, value: str, title: str | None, height: int, group: str = ""
) -> alt.Chart:
    """Horizontal bars of the count ``value`` per class, in class order and
    colour, every class named and every bar labelled with its count; with
    ``group``, one bar per value of that column in each class's row.

    One chart, not a facet: Streamlit fits a single chart to its column, where
    a faceted one overflowed it.
    """
    dom = list(CLASSES)
    y = alt.Y(
        "class:N",
        sort=dom,
        scale=alt.Scale(domain=dom),
        title=title,
        axis=alt.Axis(labelLimit=300, labelOverlap=False),
    )
    top = max(float(df[value].max()) if len(df) else 0.0, 1.0)
    x = alt.X(
        f"{value}:Q",
        # Counts are whole numbers; room is left on the right for the labels.
        axis=alt.Axis(format="d", tickMinStep=1),
        scale=alt.Scale(domain=[0, top * 1.15]),
    )
    extra = {}
    if group:
        # "train" first and in full colour, the other parts paler.
        parts = sorted(df[group].unique(), key=lambda v: (v != "train", v))
        extra = {
            "yOffset": alt.YOffset(f"{group}:N", sort=parts),
            "opacity": alt.Opacity(
                f"{group}:N",
                sort=parts,
                scale=alt.Scale(domain=parts, range=[1.0, 0.45][: len(parts)]),
            ),
        }
    base = alt.Chart(df).encode(y=y, x=x, **extra)
    bars = base.mark_bar().encode(
        color=alt.Color("class:N", scale=CLASS_SCALE, legend=None),
        tooltip=[*([group] if group else []), "class", value],
    )
    text = base.mark_text(align="left", dx=3).encode(text=alt.Text(f"{value}:Q"))
    return (bars + text).properties(height=height)


def run_label(name: str) -> str:
    """A run folder's name, short and still distinct: ``20261126-174311-ecgnet-
    random-e980`` -> ``26/11 17:43 ecgnet random e980``."""
    parts = name.split("-")
    if len(parts) >= 5 and len(parts[0]) == 8 and len(parts[1]) == 6:
        d, t = parts[0], parts[1]
        return f"{d[6:]}/{d[4:6]} {t[:2]}:{t[2:4]} {' '.join(parts[2:])}"
    return name


def curves_chart(histories: dict[str, pd.DataFrame], metric: str) -> alt.Chart:
    """``metric`` and ``val_<metric>`` per epoch, one colour per run; train and
    validation differ by line style and point shape."""
    rows = []
    for name, h in histories.items():
        run = run_label(name)
        for col, part in ((metric, "train"), (f"val_{metric}", "validation")):
            if col in h:
                rows.append(
                    pd.DataFrame(
                        {"run": run, "epoch": h["epoch"], "part": part, metric: h[col]}
                    )
                )
    if not rows:
        return alt.Chart(pd.DataFrame({"epoch": [], metric: []})).mark_line()
    df = pd.concat(rows, ignore_index=True)
    return (
        alt.Chart(df)
        .mark_line(point=True)
        .encode(
            x=alt.X("epoch:Q", axis=alt.Axis(tickMinStep=1, format="d")),
            y=alt.Y(f"{metric}:Q"),
            color=alt.Color("run:N", legend=alt.Legend(labelLimit=300)),
            strokeDash=alt.StrokeDash("part:N", title="part"),
            shape=alt.Shape("part:N", title="part"),
            tooltip=["run", "part", "epoch", alt.Tooltip(f"{metric}:Q", format=".4f")],
        )
        .properties(height=240)
    )


def confusion_chart(cm: list[list[int]] | np.ndarray) -> alt.Chart:
    """Heat map of a confusion matrix (rows true, columns predicted), row-normalised."""
    cm = np.asarray(cm)
    tot = np.maximum(cm.sum(axis=1, keepdims=True), 1)
    rows = [
        {
            "true": SHORT_NAMES[t],
            "predicted": SHORT_NAMES[p],
            "count": int(cm[i, j]),
            "share": float(cm[i, j] / tot[i, 0]),
        }
        for i, t in enumerate(CLASSES)
        for j, p in enumerate(CLASSES)
    ]
    df = pd.DataFrame(rows)
    order = [SHORT_NAMES[c] for c in CLASSES]
    base = alt.Chart(df).encode(
        x=alt.X("predicted:N", sort=order), y=alt.Y("true:N", sort=order)
    )
    heat = base.mark_rect().encode(
        color=alt.Color("share:Q", scale=alt.Scale(scheme="blues", domain=[0, 1])),
        tooltip=["true", "predicted", "count", alt.Tooltip("share:Q", format=".1%")],
    )
    text = base.mark_text().encode(
        text="count:Q",
        color=alt.condition(
            "datum.share > 0.5", alt.value("white"), alt.value("black")
        ),
    )
    return (heat + text).properties(height=260, width=300)


def signal_chart(
    time_s: np.ndarray,
    sig: np.ndarray,
    beat_time_s: np.ndarray,
    beat_class: list[str],
    max_points: int = 20000,
    *,
    amplitude_known: bool = True,
    qrs_on_s: np.ndarray | None = None,
    qrs_off_s: np.ndarray | None = None,
    qrs_ms: np.ndarray | None = None,
) -> alt.Chart:
    """The trace with every beat marked and coloured by its predicted class,
    and, where measured, each QRS from onset to offset shaded (its duration
    in the beat's tooltip).

    ``amplitude_known`` False (a strip without a grid or calibration pulse):
    the axis says the amplitude is relative, never mV.
    """
    step = max(1, len(sig) // max_points)  # keep the browser responsive
    trace = pd.DataFrame({"time_s": time_s[::step], "mV": sig[::step]})
    idx = np.clip(np.searchsorted(time_s, beat_time_s), 0, len(sig) - 1)
    beats = pd.DataFrame({"time_s": beat_time_s, "mV": sig[idx], "class": beat_class})
    n = len(beats)
    beats["QRS ms"] = (
        np.round(qrs_ms, 0) if qrs_ms is not None and len(qrs_ms) == n else np.nan
    )
    line = (
        alt.Chart(trace)
        .mark_line(color="#555", strokeWidth=1)
        .encode(
            x=alt.X("time_s:Q", title="time (s)"),
            y=alt.Y(
                "mV:Q",
                title="mV"
                if amplitude_known
                else "amplitude (relative: no grid or calibration pulse)",
            ),
        )
    )
    pts = (
        alt.Chart(beats)
        .mark_point(filled=True, size=60)
        .encode(
            x="time_s:Q",
            y="mV:Q",
            color=alt.Color(
                "class:N", scale=CLASS_SCALE, legend=alt.Legend(labelLimit=300)
            ),
            tooltip=["time_s", "class", "QRS ms"],
        )
    )
    layers = line + pts
    if qrs_on_s is not None and qrs_off_s is not None and len(qrs_on_s) == n:
        qrs = pd.DataFrame({"on": qrs_on_s, "off": qrs_off_s}).dropna()
        band = (
            alt.Chart(qrs)
            .mark_rect(opacity=0.18, color="#e45756")
            .encode(x="on:Q", x2="off:Q")
        )
        layers = band + layers
    return layers.properties(height=260).interactive(bind_y=False)


def window_chart(
    time_s: np.ndarray, sig: np.ndarray, before_s: float, after_s: float
) -> alt.Chart:
    """A beat's signal with the drawn window shaded and the beat marked at 0 s."""
    line = (
        alt.Chart(pd.DataFrame({"time_s": time_s, "mV": sig}))
        .mark_line(color="#333", strokeWidth=1)
        .encode(
            x=alt.X("time_s:Q", title="time from beat (s)"), y=alt.Y("mV:Q", title="mV")
        )
    )
    band = (
        alt.Chart(pd.DataFrame({"a": [-before_s], "b": [after_s]}))
        .mark_rect(opacity=0.12, color="#4c78a8")
        .encode(x="a:Q", x2="b:Q")
    )
    rule = (
        alt.Chart(pd.DataFrame({"t": [0.0]})).mark_rule(color="#e45756").encode(x="t:Q")
    )
    return (band + line + rule).properties(height=220)


def leads_chart(
    signals: dict[str, np.ndarray], fs: float, columns: int = 3, step: int = 4
) -> alt.Chart:
    """A page's digitised leads as a grid of small traces, one a lead (mV
    against s on the page's 10 s; nothing drawn outside a lead's panel).

    ``step``: every ``step``-th sample is drawn (the browser's load).
    """
    frames = []
    for name, sig in signals.items():
        t = np.arange(sig.size)[::step] / fs
        v = np.asarray(sig)[::step]
        ok = np.isfinite(v)
        frames.append(pd.DataFrame({"lead": name, "time_s": t[ok], "mV": v[ok]}))
    df = pd.concat(frames, ignore_index=True)
    return (
        alt.Chart(df)
        .mark_line(color="#333", strokeWidth=1)
        .encode(
            x=alt.X("time_s:Q", title="s", scale=alt.Scale(domain=[0, 10])),
            y=alt.Y("mV:Q", title="mV"),
        )
        .properties(width=260, height=90)
        .facet(
            facet=alt.Facet("lead:N", sort=list(signals), title=None), columns=columns
        )
        .resolve_scale(y="independent")
    )
