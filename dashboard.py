"""ECG workbench dashboard: ``streamlit run dashboard.py``.

Navigation and the home page; each other page is a file in ``pages/``.
"""

from __future__ import annotations

import streamlit as st

from ecg_model.app import webapp
from ecg_model.app.runs import active_model
from ecg_model.core.classes import CLASSES

#: (file, title, icon, what it is for): the navigation and the home page's links.
PAGES = [
    (
        "pages/predict.py",
        "Predict",
        ":material/ecg_heart:",
        "classify beat pictures, strips or a signal",
    ),
    (
        "pages/train.py",
        "Train",
        ":material/model_training:",
        "launch and watch training runs",
    ),
    (
        "pages/dataset.py",
        "Dataset",
        ":material/dataset:",
        "build and browse beat images",
    ),
    (
        "pages/runs.py",
        "Runs",
        ":material/monitoring:",
        "compare curves and test metrics",
    ),
]


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
    head, damaged = webapp.metrics_headline(model)
    if damaged:
        st.error(webapp.plain(damaged))
    elif head:
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
    for path, title, icon, what in PAGES:
        st.page_link(path, label=f"{title}: {what}", icon=icon)
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
    [st.Page(home, title="Home", icon=":material/home:", default=True)]
    + [st.Page(path, title=title, icon=icon) for path, title, icon, _ in PAGES]
)
nav.run()
