"""ECG workbench dashboard: ``streamlit run dashboard.py``.

Navigation and the home page; each other page is a file in ``pages/``.
"""

from __future__ import annotations

import streamlit as st

from ecg_model import webapp
from ecg_model.classes import CLASSES
from ecg_model.runs import active_model

PAGES = {
    "predict": "pages/predict.py",
    "train": "pages/train.py",
    "dataset": "pages/dataset.py",
    "runs": "pages/runs.py",
}


def home() -> None:
    """What the tool is, the active model and its figures, what to do next."""
    st.title("ECG arrhythmia classification workbench")
    st.warning(
        "Research and education only. **Not a medical device**: do not use it "
        "to diagnose, triage or treat anyone.",
        icon=":material/warning:",
    )
    st.markdown(
        "Classifies single-lead ECG beats into six classes: "
        + ", ".join(f"**{c}**" for c in CLASSES)
        + ". Clinicians upload a picture of a beat (or a signal) and see every class's "
        "probability and what drove the answer; researchers build datasets from the "
        "PhysioNet recordings, train and compare models."
    )
    model = active_model()
    st.subheader("Active model")
    st.caption(str(model))
    head = webapp.metrics_headline(model)
    if head:
        cols = st.columns(len(head))
        for col, (proto, m) in zip(cols, head.items()):
            col.metric(f"{proto} split: accuracy", f"{100 * m['accuracy']:.2f}%")
            col.metric(f"{proto} split: macro F1", f"{100 * m['macro_f1']:.2f}%")
        st.caption(
            "random: 70:30 by beat (same patients in train and test); patient: "
            "record-disjoint (new patients), the honest figure."
        )
    else:
        st.info("The active model has no metrics.json.")
    st.subheader("Pages")
    st.page_link(
        PAGES["predict"],
        label="Predict: classify beat pictures or a signal",
        icon=":material/ecg_heart:",
    )
    st.page_link(
        PAGES["train"],
        label="Train: launch and watch training runs",
        icon=":material/model_training:",
    )
    st.page_link(
        PAGES["dataset"],
        label="Dataset: build and browse beat images",
        icon=":material/dataset:",
    )
    st.page_link(
        PAGES["runs"],
        label="Runs: compare curves and test metrics",
        icon=":material/monitoring:",
    )
    if not webapp.datasets_available():
        st.subheader("Next step")
        if webapp.data_available():
            st.info(
                "No dataset is built yet. Open **Dataset** and press *Build* "
                "(about a minute), then **Train**."
            )
        else:
            st.info(
                "No dataset and no PhysioNet data found. Fetch the data with "
                "`python -m ecg_model download --data-dir data/`, set "
                "`ECG_DATA_DIR`, then build a dataset. Predict works without it."
            )
    st.caption(webapp.env_summary())


st.set_page_config(
    page_title="ECG workbench", page_icon=":material/ecg_heart:", layout="wide"
)
nav = st.navigation(
    [
        st.Page(home, title="Home", icon=":material/home:", default=True),
        st.Page(PAGES["predict"], title="Predict", icon=":material/ecg_heart:"),
        st.Page(PAGES["train"], title="Train", icon=":material/model_training:"),
        st.Page(PAGES["dataset"], title="Dataset", icon=":material/dataset:"),
        st.Page(PAGES["runs"], title="Runs", icon=":material/monitoring:"),
    ]
)
nav.run()
