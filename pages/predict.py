"""Predict: classify beat pictures, rhythm strips, 12-lead pages or a signal,
with probabilities and Grad-CAM."""

from __future__ import annotations

import streamlit as st

from ecg_model.app import charts, webapp
from ecg_model.app.runs import (
    active_model,
    class_caveat,
    model_figure,
    models_available,
)
from ecg_model.core.classes import CLASSES
from ecg_model.core.errors import EcgError
from ecg_model.data.pictures import image_read
from ecg_model.inference.block import block_decide, block_describe
from ecg_model.inference.explain import colorbar, gradcam, overlay
from ecg_model.inference.page import page_analyze
from ecg_model.inference.predict import (
    Prediction,
    beats_frame,
    class_counts,
    csv_signal_read,
    predictions_frame,
    wfdb_upload_read,
)
from ecg_model.inference.rhythm import rhythm_describe
from ecg_model.inference.strip import strip_analyze
from ecg_model.page_eval import page_export_bytes

DETAIL_MAX = 12  # pictures shown one by one; beyond that, the table and chart only


def model_pick() -> object:
    """Model selector (default: the active model); returns the loaded predictor."""
    models = models_available()
    if not models:
        st.error(
            "No model found: artifacts/default is missing and no run has finished."
        )
        st.stop()
    active = active_model().resolve()
    labels = list(models)
    paths = [p.resolve() for p in models.values()]
    index = paths.index(active) if active in paths else 0
    label = st.selectbox(
        "Model",
        labels,
        index=index,
        key="predict_model",
        format_func=lambda lab: (
            f"{lab} · {model_figure(models[lab])}"
            + (" · active" if models[lab].resolve() == active else "")
        ),
        help="The committed default model or any finished run, with its accuracy "
        "on new patients where it was tested on them.",
    )
    try:
        return webapp.predictor_get(str(models[label]))
    except EcgError as e:
        st.error(webapp.plain(e))
        st.stop()


def caveats_show(predictor, classes, where=st) -> None:
    """What the model's test on new patients says of each class it called
    (nothing for a model not tested on new patients)."""
    for c in dict.fromkeys(classes):  # each class once, in order
        if words := class_caveat(predictor.run_dir, c):
            # As prominent as the probability above it: this is how far the
            # call can be trusted on a new patient.
            where.info(f"**On a new patient:** {words}", icon=":material/info:")


def picture_card(p: Prediction, predictor, i: int) -> None:
    """One picture: the image, class and confidence, probability chart, Grad-CAM."""
    left, right = st.columns([1, 1])
    with left:
        st.markdown(f"**{webapp.plain(p.file)}**")
        # The class by its full name (a metric would cut it), then how sure.
        st.markdown(f"#### Predicted class: {p.predicted_class}")
        st.metric("Probability of this class", f"{100 * p.confidence:.1f}%")
        caveats_show(predictor, [p.predicted_class])
        if p.uncertain:
            st.warning(f"Uncertain: {webapp.plain(p.reason)}", icon=":material/help:")
        show_cam = st.toggle(
            "Show Grad-CAM",
            key=f"predict_cam_{i}",
            help="Red: what pushed the model towards this class.",
        )
        if show_cam:
            alpha = st.slider(
                "Overlay opacity", 0.0, 1.0, 0.6, 0.05, key=f"predict_alpha_{i}"
            )
            cam = gradcam(predictor.model, p.image)
            st.image(
                overlay(p.image, cam, alpha),
                caption="Grad-CAM on the model's input",
                width="stretch",
            )
            st.image(colorbar(), width="stretch")
            st.caption("colour scale: white, no evidence -> red, strongest evidence")
        else:
            st.image(
                p.image, caption="the model's input (trace redrawn)", width="stretch"
            )
        if p.span is not None:
            st.caption(f"Time span of the picture: {webapp.plain(p.span.describe())}")
    with right:
        st.altair_chart(
            charts.probability_chart(p.probabilities),
            width="stretch",
            key=f"predict_chart_{i}",
        )


def table_and_counts(
    df,
    counts: dict[str, int],
    filename: str,
    key: str,
    left=st,
    right=st,
    predictor=None,
) -> None:
    """A results table with its CSV download, the chart of class counts, and
    (given the predictor) what its new-patient test says of each class called."""
    left.dataframe(
        df,
        hide_index=True,
        key=f"{key}_table",
        column_config=webapp.percent_columns(df, ["confidence", *CLASSES]),
    )
    left.download_button(
        "Download CSV",
        df.to_csv(index=False),
        filename,
        "text/csv",
        key=f"{key}_download",
    )
    right.altair_chart(
        charts.counts_chart(counts), width="stretch", key=f"{key}_counts"
    )
    if predictor is not None:
        caveats_show(predictor, [c for c in CLASSES if counts.get(c)], left)


def strip_card(pic, predictor, name: str, k: int) -> None:
    """A rhythm strip: annotated picture, digitised trace, beat table and counts.

    A strip without ECG paper has no scale: its duration field shows there only.
    """
    duration = st.session_state.get(f"predict_duration_{k}")
    res = strip_analyze(pic, predictor, duration_s=duration, name=name)
    with st.container(border=True):
        st.markdown(f"**{webapp.plain(name)}**: {res.summary()}")
        st.caption("; ".join(res.notes))
        if res.grid is None:
            st.number_input(
                "Duration of this strip (s): no ECG paper, so it cannot be measured",
                2.0,
                60.0,
                10.0,
                0.5,
                key=f"predict_duration_{k}",
            )
        st.image(
            res.annotated,
            caption="each beat marked in its class colour",
            width="stretch",
        )
        st.altair_chart(
            charts.signal_chart(
                res.sig_time_s,
                res.sig,
                res.beat_time_s,
                res.classes,
                amplitude_known=res.amplitude_known,
            ),
            width="stretch",
            key=f"predict_strip_trace_{k}",
        )
        a, b = st.columns([1, 1])
        table_and_counts(
            res.beats_frame(),
            res.counts,
            f"strip_{k + 1}_beats.csv",
            f"predict_strip_{k}",
            a,
            b,
            predictor,
        )


def page_card(pic, predictor, name: str, k: int) -> None:
    """A 12-lead page: the page annotated, its leads, the rhythm strip's beats,
    heart rate, the block decision from every lead, and the leads as files."""
    with st.spinner(f"Reading {webapp.plain(name)} as a 12-lead page..."):
        res = page_analyze(pic, predictor, name)
        wfdb_zip, csv = page_export_bytes(res.scan, f"page_{k + 1}")
    with st.container(border=True):
        hr = res.heart_rate_bpm
        irr = res.rr_irregularity
        st.markdown(
            f"**{webapp.plain(name)}**: 12-lead page, layout {res.scan.layout}, "
            f"{len(res.classes)} beats on lead {res.lead}"
            + (f", heart rate {hr:.0f} bpm" if hr else "")
            + (f", RR variation {100 * irr:.0f}%" if irr is not None else "")
        )
        if res.block.get("leads") is not None:
            st.markdown(f"**Conduction:** {webapp.plain(block_describe(res.block))}")
        st.caption("; ".join(res.scan.notes))
        st.image(
            res.annotated,
            caption="each lead's panel and name; the rhythm strip's beats in "
            "their class colours",
            width="stretch",
        )
        st.altair_chart(
            charts.leads_chart(res.scan.signals, res.scan.fs),
            key=f"predict_page_leads_{k}",
        )
        a, b = st.columns([1, 1])
        table_and_counts(
            beats_frame(res.table),
            class_counts(res.classes),
            f"page_{k + 1}_beats.csv",
            f"predict_page_{k}",
            a,
            b,
            predictor,
        )
        c, d = st.columns(2)
        c.download_button(
            "Leads as WFDB (.hea + .dat, zip)",
            wfdb_zip,
            f"page_{k + 1}_wfdb.zip",
            "application/zip",
            key=f"predict_page_wfdb_{k}",
        )
        d.download_button(
            "Leads as CSV",
            csv,
            f"page_{k + 1}_leads.csv",
            "text/csv",
            key=f"predict_page_csv_{k}",
        )


def pictures_section(predictor) -> None:
    ups = st.file_uploader(
        "Beat pictures, rhythm strips or 12-lead pages (PNG, JPEG, BMP, WebP)",
        type=webapp.IMAGE_TYPES,
        accept_multiple_files=True,
        key="predict_upload",
    )
    ex = webapp.examples()
    picked = st.multiselect(
        "...or bundled example beats (training beats of the default model)",
        [e.name for e in ex],
        key="predict_examples",
        help="Beats drawn by the project's renderer from patients the default "
        "model was trained on: it has seen these very beats, so its answers on "
        "them say nothing of a new patient (see the figures under each call).",
    )
    items = [(u.name, u.getvalue()) for u in ups or []]
    items += [(e.name, e.read_bytes()) for e in ex if e.name in picked]
    if not items:
        st.info("Upload one or more pictures of a beat, or pick an example.")
        return
    kind = st.radio(
        "Each picture is",
        ["Detect", "A single beat", "A rhythm strip", "A 12-lead page"],
        horizontal=True,
        key="predict_kind",
        help="Detect: wide pictures (over 3 s of ECG paper, or 3.5 times "
        "as wide as tall) are read as strips, and as 12-lead pages where they "
        "hold three traces or more, one above another.",
    )
    span_s = None
    if kind not in ("A rhythm strip", "A 12-lead page"):
        span_s = st.number_input(
            "Seconds each beat picture shows (optional)",
            min_value=0.3,
            max_value=10.0,
            value=None,
            step=0.1,
            key="predict_span",
            help="The model reads 2.4 s around a beat. Left empty, the span is "
            "read from an ECG-paper grid (25 mm/s), or estimated: a picture of "
            "one beat is taken as a 0.8 s crop, anything else as 2.4 s. A wrong "
            "span stretches or squeezes the QRS, which is what separates "
            "bundle branch blocks.",
        )
    preds: list[Prediction] = []
    for k, (name, data) in enumerate(items):
        try:
            pic = image_read(data, name)
            how = {
                "A rhythm strip": "strip",
                "A single beat": "beat",
                "A 12-lead page": "page",
            }.get(kind, "detect")
            read_as, warning = predictor.picture_read_as(pic, name, how)
            if read_as == "page":
                page_card(pic, predictor, name, k)
                continue
            if read_as == "strip":
                strip_card(pic, predictor, name, k)
                continue
            if warning:  # forced to one beat
                st.warning(
                    webapp.plain(warning)
                    + ". Choose *Detect* or *A rhythm strip* to classify each beat.",
                    icon=":material/warning:",
                )
            preds.append(predictor.predict_picture(pic, name, span_s))
        except EcgError as e:
            st.error(webapp.plain(e))
    if not preds:
        return
    for i, p in enumerate(preds[:DETAIL_MAX]):
        with st.container(border=True):
            picture_card(p, predictor, i)
    if len(preds) > DETAIL_MAX:
        st.caption(
            f"Showing the first {DETAIL_MAX} pictures one by one; all "
            f"{len(preds)} are in the table."
        )
    if len(preds) > 1:
        st.subheader(f"All {len(preds)} pictures")
        df = predictions_frame(preds)
        table_and_counts(
            df,
            class_counts(list(df["predicted_class"])),
            "predictions.csv",
            "predict_pictures",
            predictor=predictor,
        )


def signal_section(predictor) -> None:
    kind = st.radio(
        "Signal format",
        ["CSV of millivolts", "WFDB record (.hea + .dat)"],
        horizontal=True,
        key="predict_signal_kind",
    )
    if kind.startswith("CSV"):
        up = st.file_uploader(
            "One-column CSV (mV, optional header line)",
            type=["csv", "txt"],
            key="predict_csv",
        )
        fs = st.number_input(
            "Sampling rate (Hz)", 50.0, 2000.0, 360.0, 10.0, key="predict_fs"
        )
        if up is None:
            st.info("Upload a CSV and give its sampling rate.")
            return
        others, lead = {}, ""
        try:
            sig = csv_signal_read(up.getvalue(), up.name, fs=float(fs))
        except EcgError as e:
            st.error(webapp.plain(e))
            st.stop()
        label = up.name
    else:
        ups = st.file_uploader(
            "The record's .hea and .dat files",
            type=["hea", "dat"],
            accept_multiple_files=True,
            key="predict_wfdb",
        )
        if not ups:
            st.info("Upload a record's header (.hea) and signal (.dat) together.")
            return
        try:
            sig, fs, lead, others = wfdb_upload_read(
                {u.name: u.getvalue() for u in ups}
            )
        except EcgError as e:
            st.error(webapp.plain(e))
            st.stop()
        label = f"{[u.name for u in ups if u.name.endswith('.hea')][0]} (lead {lead})"
    try:
        table = predictor.predict_signal(sig, float(fs), others, lead)
    except EcgError as e:
        st.error(webapp.plain(f"{label}: {e}"))
        st.stop()
    df = beats_frame(table)
    st.subheader(f"{webapp.plain(label)}: {len(df)} beats")
    if predictor.block_stage is not None:
        decision = block_decide(
            table.predicted, table.block_q, table.qrs_ms, table.leads
        )
        say = st.warning if decision["block"] in ("LBBB", "RBBB", "unsure") else st.info
        say(f"Conduction: {block_describe(decision)}.", icon=None)
        st.caption(
            "QRS ms: each beat's QRS duration measured on the main lead "
            "(NeuroKit2's wavelet delineator), shaded on the trace from onset to "
            "offset. A block is a QRS of 120 ms or more in a beat conducted on "
            "time: the block stage divides each conducted beat between Normal, "
            "LBBB and RBBB by its measured QRS and shape in every lead the "
            "signal has (II, V1, V6, I); the note column says where it cannot "
            "tell left from right."
        )
    else:
        st.caption(
            "QRS ms: each beat's QRS duration measured on this lead (NeuroKit2's "
            "wavelet delineator), shaded on the trace from onset to offset. A "
            "block is a QRS of 120 ms or more in a beat conducted on time; this "
            "model has no block stage, so the class beside it is the picture "
            "model's."
        )
    if predictor.pac_ratio_threshold is not None:
        st.caption(
            "Rhythm step on: "
            + rhythm_describe(
                predictor.pac_ratio_threshold,
                predictor.irregular_max,
                "learnt" if predictor.rhythm_stage else "rule",
            )
            + " (fitted on this model's training records)."
        )
    st.altair_chart(
        charts.signal_chart(
            table.sig_time_s,
            table.sig,
            table.time_s,
            table.predicted,
            qrs_on_s=table.qrs_on_s,
            qrs_off_s=table.qrs_off_s,
            qrs_ms=table.qrs_ms,
        ),
        width="stretch",
        key="predict_signal_chart",
    )
    table_and_counts(
        df,
        class_counts(table.predicted),
        "beats.csv",
        "predict_beats",
        predictor=predictor,
    )


def page() -> None:
    st.title("Predict")
    st.caption("Research and education only; not a medical device.")
    predictor = model_pick()
    mode = st.radio(
        "Input", ["Beat pictures", "Signal"], horizontal=True, key="predict_mode"
    )
    if mode == "Beat pictures":
        pictures_section(predictor)
    else:
        signal_section(predictor)


page()
