"""ECG workbench dashboard: ``streamlit run dashboard.py``.

Navigation and the home page; each other page is a file in ``pages/``.
"""

from __future__ import annotations

import streamlit as st

from ecg_model.app import webapp
from ecg_model.app.runs import active_model, metrics_headline
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


def model_figures(head: dict) -> None:
    """New-patient figures first, in plain words; the same-patient figure after."""
    new = head.get("patient")
    if new:
        st.markdown(
            "**On new patients**: tested on patients it never saw in training, as "
            "the patient of every uploaded picture is. (The published default is "
            "then trained again on every patient; these are the figures of its "
            "recipe with the test patients held out.)"
        )
        c1, c2, c3 = st.columns(3)
        c1.metric("Accuracy on new patients", f"{100 * new['accuracy']:.1f}%")
        base = new.get("baseline") or {}
        if "accuracy" in base:
            # What always answering the commonest class scores on the same beats.
            c2.metric(
                f"Always {base.get('predicts', 'Normal')} (baseline)",
                f"{100 * base['accuracy']:.1f}%",
            )
        c3.metric("Macro F1 on new patients", f"{100 * new['macro_f1']:.1f}%")
        words = {
            "good": "Good at (recall 90% or more)",
            "fair": "Fair at (60-90%)",
            "poor": "Poor at (under 60%): treat its answer for these with care",
        }
        for grade, classes in webapp.class_grades(new).items():
            if classes:
                recalls = ", ".join(
                    f"{c} {100 * new['per_class'][c]['recall']:.0f}%" for c in classes
                )
                st.markdown(f"- **{words[grade]}**: {recalls}")
        rr = new.get("rr_context")
        if rr:
            st.caption(
                "Signals, records and strips add the rhythm step (early beats): "
                f"accuracy {100 * rr['accuracy']:.1f}%, macro F1 "
                f"{100 * rr['macro_f1']:.1f}% on the same new patients."
            )
    same = head.get("random")
    if same:
        text = (
            f"On patients it learnt from (random 70:30 split by beat, the "
            f"original report's protocol, scored by its own model): accuracy "
            f"{100 * same['accuracy']:.2f}%, "
            f"macro F1 {100 * same['macro_f1']:.2f}%. This compares with published "
            "figures; it is not what to expect on a new patient."
        )
        if new:
            st.caption(text)
        else:
            st.markdown(text)
    for proto, m in head.items():
        if proto not in ("patient", "random"):
            st.markdown(
                f"Test part ({webapp.plain(proto)}): accuracy "
                f"{100 * m['accuracy']:.2f}%, macro F1 {100 * m['macro_f1']:.2f}%."
            )


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
    st.subheader(f"Active model: {webapp.plain(webapp.model_label(model))}")
    head, damaged = metrics_headline(model)
    if damaged:
        st.error(webapp.plain(damaged))
    elif head:
        model_figures(head)
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
                "(about 40 s, in the background), then **Train**."
            )
        else:
            st.info(
                "No dataset and no PhysioNet data found. Fetch the data with "
                "`python -m ecg_model download --data-dir data/`, set "
                "`ECG_DATA_DIR`, then build a dataset. Predict works without it."
            )


# The icon is served by this server: a page asks no host but its own.
st.set_page_config(
    page_title="ECG workbench", page_icon=str(webapp.ICON), layout="wide"
)
nav = st.navigation(
    [st.Page(home, title="Home", icon=":material/home:", default=True)]
    + [st.Page(path, title=title, icon=icon) for path, title, icon, _ in PAGES]
)
nav.run()
