"""Train: launch a run in a background process, watch it live, cancel, inspect."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ecg_model.app import charts, webapp
from ecg_model.app.jobs import status_checked
from ecg_model.app.runs import (
    active_model,
    active_model_set,
    model_compare,
    run_history,
    run_metrics,
    runs_list,
)
from ecg_model.core.classes import CLASSES
from ecg_model.core.errors import EcgError
from ecg_model.data.dataset import ALL_SPLIT, SPLITS, dataset_preview, dataset_spec
from ecg_model.data.render import RenderSpec
from ecg_model.training.config import (
    BALANCE,
    FIELD_HELP,
    MODEL_NAMES,
    VAL_BY,
    TrainConfig,
)
from ecg_model.training.recipes import recipe_config, recipes_available
from ecg_model.training.runfolder import progress_summary

#: Form widget key -> the TrainConfig field it sets.
FORM_FIELDS = {
    "train_epochs": "epochs",
    "train_batch": "batch_size",
    "train_lr": "learning_rate",
    "train_model": "model",
    "train_split": "split",
    "train_balance": "balance",
    "train_augment": "augment",
    "train_seed": "seed",
    "train_edge_blank": "edge_blank",
    "train_flip": "flip",
    "train_lowres": "lowres",
    "train_val_by": "val_by",
}
BATCHES = [32, 64, 128, 256, 512]
RATES = [1e-4, 3e-4, 5e-4, 1e-3, 2e-3, 5e-3]
SPLIT_CHOICES = [*SPLITS, ALL_SPLIT]


def recipe_values(cfg: TrainConfig, datasets: dict) -> dict:
    """The form's widget values for a configuration."""
    v = {key: getattr(cfg, name) for key, name in FORM_FIELDS.items()}
    if cfg.split not in SPLIT_CHOICES:
        v["train_split"] = "patient"
    if cfg.batch_size not in BATCHES:
        v["train_batch"] = 256
    if cfg.learning_rate not in RATES:
        v["train_lr"] = 2e-3
    v["train_cap"] = int(cfg.class_caps.get("Normal", 0))
    name = Path(cfg.dataset).name if cfg.dataset else ""
    v["train_dataset"] = name if name in datasets else "(built for the split)"
    return v


def recipe_pick(datasets: dict) -> None:
    """The recipes of the experiment records, the published one first: the
    form starts from the chosen one (a change of recipe sets every field; a
    field Streamlit forgot, after a visit to another page, is set again)."""
    try:
        recipes = recipes_available()
    except EcgError as e:
        st.error(webapp.plain(e))
        recipes = {}

    def cfg_of(label: str | None) -> TrainConfig:
        try:
            return recipe_config(recipes[label]) if label in recipes else TrainConfig()
        except EcgError as e:
            st.error(webapp.plain(e))
            return TrainConfig()

    def changed() -> None:
        cfg = cfg_of(st.session_state.get("train_recipe"))
        st.session_state.update(recipe_values(cfg, datasets))

    if recipes:
        st.selectbox(
            "Start from a recipe",
            list(recipes),
            key="train_recipe",
            on_change=changed,
            help="The experiment records with a training configuration "
            "(experiments/); the first is the published model's recipe. The "
            "form below takes its values; change any before launching.",
        )
    values = recipe_values(cfg_of(st.session_state.get("train_recipe")), datasets)
    for key, v in values.items():
        st.session_state.setdefault(key, v)


def launch_form() -> None:
    datasets = webapp.datasets_available()
    recipe_pick(datasets)
    h = FIELD_HELP
    with st.form("train_form"):
        epochs = st.slider("Epochs", 1, 60, key="train_epochs", help=h["epochs"])
        c1, c2, c3 = st.columns(3)
        batch = c1.selectbox(
            "Batch size", BATCHES, key="train_batch", help=h["batch_size"]
        )
        lr = c2.select_slider(
            "Learning rate", RATES, key="train_lr", help=h["learning_rate"]
        )
        model = c3.selectbox(
            "Architecture", MODEL_NAMES, key="train_model", help=h["model"]
        )
        c4, c5, c6 = st.columns(3)
        split = c4.radio(
            "Split protocol",
            SPLIT_CHOICES,
            key="train_split",
            help=h["split"] + ". Leave-one-database-out runs from the command "
            "line: python -m ecg_model lodo.",
        )
        ds_label = c5.selectbox(
            "Dataset",
            ["(built for the split)", *datasets],
            key="train_dataset",
            help=h["dataset"],
        )
        balance = c6.selectbox(
            "Class weights", BALANCE, key="train_balance", help=h["balance"]
        )
        c7, c8, c9 = st.columns(3)
        cap = c7.number_input(
            "Cap on Normal training images (0: none)",
            0,
            200_000,
            step=1000,
            key="train_cap",
            help=h["class_caps"],
        )
        augment = c8.checkbox(
            "Augmentation (shift)", key="train_augment", help=h["augment"]
        )
        seed = c9.number_input("Seed", 0, 2**31 - 1, key="train_seed", help=h["seed"])
        edge_blank = st.slider(
            "Share of pictures with an edge blanked",
            0.0,
            0.5,
            step=0.05,
            key="train_edge_blank",
            help=h["edge_blank"],
        )
        flip = st.slider(
            "Share of pictures turned upside down",
            0.0,
            0.5,
            step=0.05,
            key="train_flip",
            help=h["flip"],
        )
        lowres = st.slider(
            "Share of pictures seen at 1/2 or 1/4 the columns",
            0.0,
            0.5,
            step=0.05,
            key="train_lowres",
            help=h["lowres"],
        )
        val_by = st.radio(
            "Validation (early stopping)",
            VAL_BY,
            horizontal=True,
            key="train_val_by",
            help=h["val_by"],
        )
        go = st.form_submit_button(
            "Launch training", type="primary", key="train_launch"
        )
    if not go:
        return
    try:
        cfg = TrainConfig(
            model=model,
            split=split,
            epochs=int(epochs),
            batch_size=int(batch),
            learning_rate=float(lr),
            class_caps={"Normal": int(cap)} if cap else {},
            balance=balance,
            augment=augment,
            edge_blank=float(edge_blank),
            flip=float(flip),
            lowres=float(lowres),
            val_by=val_by,
            seed=int(seed),
            dataset=str(datasets[ds_label]) if ds_label in datasets else "",
        )
        run, msg = webapp.registry_get().submit(cfg, owner=webapp.session_token())
    except (ValueError, EcgError) as e:
        st.error(webapp.plain(e))
        return
    st.session_state["train_last"] = str(run)
    st.toast(webapp.plain(msg))


def launch_banner() -> None:
    """The last launch's run as it is now: its place in the queue while it
    waits, "training" while it trains; nothing once it has ended (its result
    is below). The live fragment redraws the page when that state changes."""
    run = st.session_state.get("train_last")
    if not run:
        return
    reg = webapp.registry_get()
    try:
        state = status_checked(Path(run)).get("state")
    except EcgError:
        state = "damaged"
    name = Path(run).name
    queue = [str(q) for q in reg.queued()]
    if state == "queued" and run in queue:
        who = reg.active()
        st.info(
            webapp.plain(
                f"{name} is queued: position {queue.index(run) + 1} of "
                f"{len(queue)}, behind {who.name if who else 'another run'} "
                "(one run trains at a time)."
            )
        )
    elif state == "running":
        st.success(webapp.plain(f"{name} is training (progress below)."))


def _state_of(run: str | None) -> str:
    if not run:
        return ""
    try:
        return str(status_checked(Path(run)).get("state", ""))
    except EcgError:
        return "damaged"


@st.fragment(run_every="3s")
def live() -> None:
    """Progress of the run in training (and the queue), refreshed every 3 s."""
    reg = webapp.registry_get()
    run = reg.active()
    queued = reg.queued()
    # When a run ends or a queued one starts, the whole page is redrawn: the
    # finished run's result below and the launch banner above are outside this
    # fragment.
    # The last launch's state too: queued -> running -> finished each redraw
    # the banner and the "Latest run" heading, which are outside the fragment.
    last = st.session_state.get("train_last")
    now = f"{run or ''}|{len(queued)}|{_state_of(last)}"
    seen = st.session_state.get("train_seen_active")
    st.session_state["train_seen_active"] = now
    if seen is not None and seen != now:
        st.rerun()
    if run is None:
        st.info("No run is training.")
        who, admin = webapp.control_identity()
        queued_section(reg, queued, who, admin)
        return
    st.subheader(f"Training: {run.name}")
    try:
        st_ = status_checked(run)
    except EcgError as e:
        st.error(webapp.plain(e))
        st_ = {"state": "damaged"}
    p = progress_summary(st_)
    st.progress(p["fraction"], text=p["text"])
    c1, c2, c3 = st.columns(3)
    c1.metric("Elapsed", p["elapsed"])
    c2.metric("Remaining (estimate)", p["remaining"])
    c3.metric("Phase", st_.get("phase", "") or st_.get("state", ""))
    h = run_history(run)
    if h is not None and len(h):
        a, b = st.columns(2)
        a.altair_chart(
            charts.curves_chart({run.name: h}, "loss"),
            width="stretch",
            key="train_live_loss",
        )
        b.altair_chart(
            charts.curves_chart({run.name: h}, "accuracy"),
            width="stretch",
            key="train_live_acc",
        )
    who, admin = webapp.control_identity()
    if st.button("Cancel run", key="train_cancel", type="secondary"):
        try:
            st.toast(webapp.plain(reg.cancel(run, who=who, admin=admin)))
        except EcgError as e:
            st.error(webapp.plain(e))
    queued_section(reg, queued, who, admin)


def queued_section(reg, queued: list[Path], who: str, admin: str) -> None:
    """The runs waiting in the queue, each with its own Cancel."""
    if not queued:
        return
    st.caption(f"Queued ({len(queued)}), in the order they will start:")
    for i, q in enumerate(queued):
        a, b = st.columns([4, 1])
        a.text(q.name)
        if b.button("Cancel", key=f"train_cancel_queued_{i}"):
            try:
                st.toast(webapp.plain(reg.cancel(q, who=who, admin=admin)))
            except EcgError as e:
                st.error(webapp.plain(e))
            else:
                if st.session_state.get("train_last") == str(q):
                    # The run below becomes the one training, not the withdrawn one.
                    st.session_state["train_last"] = str(reg.active() or "")


def last_run() -> None:
    """The most recent run: its result, error, or metrics and confusion matrix."""
    runs = runs_list()
    if runs.empty:
        return
    name = st.session_state.get("train_last")
    row = (
        runs[runs["path"] == name].iloc[0]
        if name in set(runs["path"])
        else runs.iloc[0]
    )
    run = Path(row["path"])
    mark = ", the active model" if row["active"] else ""
    st.subheader(f"Latest run: {run.name} ({row['state']}{mark})")
    m, damaged = run_metrics(run)
    if row["state"] == "failed":
        st.error(f"Run failed: {webapp.plain(row['error'])}")
    elif row["state"] == "damaged" or damaged:
        st.error(f"Run damaged: {webapp.plain(damaged or row['error'])}")
    elif row["state"] == "cancelled":
        st.warning("Run cancelled.")
    elif row["state"] == "finished" and m:
        c1, c2, c3 = st.columns(3)
        c1.metric("Test accuracy", f"{100 * m['accuracy']:.2f}%")
        c2.metric("Macro recall", f"{100 * m['macro_recall']:.2f}%")
        c3.metric("Macro F1", f"{100 * m['macro_f1']:.2f}%")
        a, b = st.columns(2)
        a.altair_chart(charts.confusion_chart(m["confusion_matrix"]), key="train_cm")
        webapp.per_class_table(m, "train_per_class", b)
        words, confirm = model_compare(run, active_model())
        st.caption(webapp.plain(words))
        sure = True
        if confirm:
            sure = st.checkbox(
                "It is worse than the active model, or not tested on new "
                "patients: make it the active model all the same",
                key="train_activate_sure",
            )
        if st.button(
            "Make this the active model", key="train_activate", disabled=not sure
        ):
            try:
                active_model_set(run)
                st.success(f"{run.name} is now the active model.")
            except EcgError as e:
                st.error(webapp.plain(e))


def preview() -> None:
    """The chosen dataset's pictures, and what the model will see of them."""
    datasets = webapp.datasets_available()
    if not datasets:
        return
    with st.expander("What the model sees of a dataset", expanded=False):
        # Outside the form: a form's widgets take effect only when it is sent.
        name = st.selectbox("Folder shown", list(datasets), key="train_preview_dataset")
        spec = dataset_spec(datasets[name]) or RenderSpec()
        st.caption(
            "One training picture of each class, as it is (left) and as the "
            "model's input after normalisation: the trace found and redrawn "
            f"at {spec.image_height} x {spec.image_width} px."
        )
        shown = dataset_preview(datasets[name], spec)
        if not shown:
            st.warning("No readable training pictures in this dataset.")
        for cls, rel, pic, img in shown:
            c1, c2 = st.columns(2)
            c1.image(pic, caption=webapp.plain(f"{cls}: {rel}"), clamp=True)
            c2.image(img, caption="model input", clamp=True)


def page() -> None:
    st.title("Train")
    st.caption(
        f"Classes: {', '.join(CLASSES)}. One run trains at a time, in its own "
        "process; others wait in a queue."
    )
    webapp.admin_field()
    launch_form()
    preview()
    launch_banner()
    live()
    last_run()


page()
