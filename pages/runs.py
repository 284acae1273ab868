"""Runs: every run in a table, curves overlaid, test metrics, delete."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ecg_model.app import charts, webapp
from ecg_model.app.runs import (
    active_model,
    active_model_set,
    run_delete,
    run_history,
    run_metrics,
    runs_list,
)
from ecg_model.core.errors import EcgError
from ecg_model.inference.rhythm import rhythm_describe


def _headline(m: dict) -> str:
    """Accuracy, macro recall and macro F1 of a metrics dict, in words."""
    return (
        f"accuracy {100 * m['accuracy']:.2f}%, macro recall "
        f"{100 * m['macro_recall']:.2f}%, macro F1 {100 * m['macro_f1']:.2f}%"
    )


def active_section() -> None:
    """Which model serves predictions, and the way back to the default."""
    active = active_model()
    label = webapp.model_label(active)
    if label == "default":
        st.caption("Active model: the default model (`artifacts/default`).")
        return
    a, b = st.columns([3, 1])
    a.markdown(f"**Active model:** {webapp.plain(label)} (marked in the table)")
    if b.button("Use the default model", key="runs_use_default"):
        active_model_set(None)
        st.session_state["runs_done"] = (
            f"The default model is active again (was {label})."
        )
        st.rerun()


def page() -> None:
    st.title("Runs")
    webapp.admin_field()
    if done := st.session_state.pop("runs_done", None):
        st.success(webapp.plain(done))
    active_section()
    runs = runs_list()
    if runs.empty:
        st.info("No training runs yet: launch one on the Train page.")
        return
    table = runs.drop(columns=["path"])
    st.dataframe(
        table,
        hide_index=True,
        key="runs_table",
        column_config={
            **webapp.percent_columns(
                table, ["test_accuracy", "test_macro_f1", "best_val_accuracy"]
            ),
            "active": st.column_config.CheckboxColumn(
                "active", help="The model the Predict page uses"
            ),
        },
    )

    st.subheader("Training curves")
    names = list(runs["run"])
    paths = dict(zip(runs["run"], runs["path"]))
    # The newest run that has curves, and the newest that has test metrics.
    trained = [n for n in names if (Path(paths[n]) / "history.csv").exists()]
    tested = [n for n in names if (Path(paths[n]) / "metrics.json").exists()]
    chosen = st.multiselect(
        "Runs to overlay", names, default=trained[:1], key="runs_overlay"
    )
    hist = {n: h for n in chosen if (h := run_history(paths[n])) is not None}
    if hist:
        a, b = st.columns(2)
        a.altair_chart(
            charts.curves_chart(hist, "loss"), width="stretch", key="runs_loss"
        )
        b.altair_chart(
            charts.curves_chart(hist, "accuracy"), width="stretch", key="runs_acc"
        )
    else:
        st.caption("The chosen runs have no finished epoch yet.")

    st.subheader("Test metrics")
    actives = set(runs.loc[runs["active"], "run"])
    pick = st.selectbox(
        "Run",
        names,
        index=names.index(tested[0]) if tested else 0,
        key="runs_pick",
        format_func=lambda n: f"{n} (active model)" if n in actives else n,
    )
    run = Path(paths[pick])
    m, damaged = run_metrics(run)
    if damaged:
        st.error(webapp.plain(damaged))
    elif m:
        c1, c2, c3, c4 = st.columns(4)
        c1.metric("Accuracy", f"{100 * m['accuracy']:.2f}%")
        c2.metric("Macro recall", f"{100 * m['macro_recall']:.2f}%")
        c3.metric("Macro F1", f"{100 * m['macro_f1']:.2f}%")
        b = m.get("baseline", {})
        if b:
            c4.metric(
                f"Baseline (always {b['predicts']})", f"{100 * b['accuracy']:.2f}%"
            )
        a, b2 = st.columns([1, 1])
        a.altair_chart(charts.confusion_chart(m["confusion_matrix"]), key="runs_cm")
        webapp.per_class_table(m, "runs_per_class", b2)
        rr = m.get("rr_context")
        if rr:
            st.markdown(
                "**With the rhythm step** ("
                + rhythm_describe(
                    rr["pac_ratio_threshold"], rr.get("irregular_max"), rr.get("use")
                )
                + f"; fitted on the training records): {_headline(rr)}"
            )
            webapp.per_class_table(rr, "runs_per_class_rr")
        val = m.get("validation")
        if val:
            st.markdown(
                "**Development set** (training patients held out whole: "
                f"{', '.join(val['records'])}; `--val-by record`): {_headline(val)}"
            )
            webapp.per_class_table(val, "runs_per_class_val")
    else:
        state = runs.loc[runs["run"] == pick, "state"].iloc[0]
        st.info(f"{pick} has no test metrics ({state}).")

    delete_section(pick, run, pick in actives)


def delete_section(pick: str, run: Path, is_active: bool) -> None:
    """Delete the chosen run. The confirmation belongs to the run it names (its
    key holds the run's name, so choosing another run starts unticked), and
    the active model needs a second, explicit confirmation."""
    with st.expander(f"Delete {pick}"):
        sure = st.checkbox(
            f"Yes, delete {pick} and all its files", key=f"runs_confirm_{pick}"
        )
        active_ok = True
        if is_active:
            st.warning(
                f"{pick} is the active model: after the delete, the default "
                "model serves predictions."
            )
            active_ok = st.checkbox(
                "Yes, delete the active model", key=f"runs_confirm_active_{pick}"
            )
        if st.button(
            "Delete run",
            disabled=not (sure and active_ok),
            key=f"runs_delete_{pick}",
            type="primary",
        ):
            who, admin = webapp.control_identity()
            try:
                done = run_delete(run, who=who, admin=admin, active_ok=active_ok)
            except EcgError as e:
                st.error(webapp.plain(e))
            else:
                st.session_state["runs_done"] = done
                st.rerun()


page()
