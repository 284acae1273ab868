"""Dataset: build from the recordings, or open an image folder; browse samples."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ecg_model.app import charts, webapp
from ecg_model.app.jobs import build_summary
from ecg_model.core.classes import CLASSES
from ecg_model.core.errors import EcgError
from ecg_model.core.io import artifacts_dir, data_dir, path_confine
from ecg_model.data.databases import (
    DATABASES,
    DEFAULT_DATABASES,
    PROTOCOL_DATABASES,
)
from ecg_model.data.dataset import (
    SPLITS,
    BuildOptions,
    absent_note,
    counts_by_record,
    databases_absent,
    dataset_name,
    dataset_options,
    folder_notes,
    manifest_filter,
    manifest_read,
    sample_image,
    sample_signal,
)
from ecg_model.data.render import VIEWS, RenderSpec

GRID_COLS = 6


def build_section() -> None:
    reg = webapp.registry_get()
    with st.expander(
        "Build or rebuild a dataset from the recordings",
        expanded=not webapp.datasets_available(),
    ):
        st.caption(
            f"Data folder: {webapp.plain(data_dir())} (set ECG_DATA_DIR to change "
            "it). The build runs in the background: closing this tab does not stop "
            "it. On 2 cores mitdb and vfdb take about 40 s, the five databases of "
            "the new-patient protocol about 60 s (measured by `python -m "
            "ecg_model.bench`), twice that with extra leads."
        )
        with st.form("dataset_build_form"):
            c1, c2, c3 = st.columns(3)
            split = c1.radio("Split", SPLITS, key="dataset_split")
            cap = c2.number_input(
                "Cap Normal in train (0: none)", 0, 200_000, 0, 1000, key="dataset_cap"
            )
            top = c3.number_input(
                "Top rare classes up to (0: off)", 0, 20_000, 0, 100, key="dataset_min"
            )
            c4, c5, c6 = st.columns(3)
            dbs = c4.multiselect(
                "Databases",
                list(DATABASES),
                default=list(DEFAULT_DATABASES),
                key="dataset_databases",
                help="mitdb and vfdb are the original report's; the patient split "
                f"of {', '.join(PROTOCOL_DATABASES)} is the new-patient "
                "protocol. incartdb trains only (its records share patients); "
                "ptbxl tests on its own tenth fold (and adds hundreds of "
                "bundle branch block patients). Both are fetched with "
                "`python -m ecg_model download`.",
            )
            width = c5.selectbox(
                "Columns a window is drawn in",
                [RenderSpec.image_width, 128],
                key="dataset_width",
                help="256: the contract of the published models (9.4 ms a column); "
                "128: the first contract.",
            )
            leads = c6.checkbox(
                "Extra leads of training patients",
                key="dataset_extra_leads",
                help="Also draw every other lead of each training record at the "
                "same beats (patient split only; test patients keep one lead).",
            )
            noise = st.slider(
                "Share of training beats also drawn with recording noise",
                0.0,
                1.0,
                BuildOptions.noise,
                0.1,
                key="dataset_noise",
                help="Electrode motion (0.5-5 Hz) at -6 to 12 dB added to a copy "
                "of that share of each training record's beats, labelled as the "
                "beat is (patient split only; test patients stay as recorded). "
                "A model that never saw noisy Normal beats calls them VF.",
            )
            view = st.radio(
                "Pictures",
                VIEWS,
                format_func={
                    "window": "beat windows of 2.4 s (the model's contract)",
                    "thumbnail": "one-beat thumbnails of 0.4-1.2 s, read back",
                }.get,
                horizontal=True,
                key="dataset_view",
                help="Thumbnails are drawn as other software draws one beat "
                "(random size, line, grey level, clipping), then read back as an "
                "upload is: the data of a lone-beat model (a run's lone/ folder).",
            )
            go = st.form_submit_button("Build", type="primary", key="dataset_build")
        if go:
            if not dbs:
                st.error("Choose at least one database.")
                st.stop()
            absent = databases_absent(dbs)
            if absent:
                # Names from the adapters' list, not the user's text: Markdown.
                if len(absent) == len(dbs):
                    st.error(f"Nothing to build: {absent_note(absent)}.")
                    st.stop()
                st.warning(f"Built without them: {absent_note(absent)}.")
            try:
                # the build's own checks
                BuildOptions(split=split, extra_leads=leads, noise=float(noise))
            except EcgError as e:
                st.error(webapp.plain(e))
                st.stop()
            name = dataset_name(
                split, tuple(dbs), int(width), leads, float(noise), view
            )
            out = artifacts_dir() / "datasets" / name
            try:
                msg = reg.build_submit(
                    {
                        "split": split,
                        "normal_cap": cap,
                        "min_per_class": top,
                        "databases": dbs,
                        "image_width": int(width),
                        "extra_leads": leads,
                        "noise": float(noise),
                        "view": view,
                    },
                    out,
                )
            except EcgError as e:
                st.error(webapp.plain(e))
            else:
                st.toast(msg)
    # Outside the expander: seen whether it is open or not. It refreshes every
    # second only while a build runs: a page that reran itself every second
    # for ever cost CPU while idle, and on a busy machine such a rerun could
    # take the place of the full rerun a Build click asked for, losing it.
    job = reg.build_status()
    active = bool(job) and job.get("state") in ("starting", "running")
    st.fragment(build_progress, run_every="1s" if active else None)()


def build_progress() -> None:
    """The background build: progress, time, Cancel; its result when it ends."""
    reg = webapp.registry_get()
    job = reg.build_status()
    state = job.get("state") if job else None
    seen = st.session_state.get("dataset_build_seen")
    st.session_state["dataset_build_seen"] = state
    if seen in ("starting", "running") and state not in ("starting", "running"):
        # Ended: the dataset list and the page below change; show the new one.
        st.session_state["dataset_pick_next"] = Path(
            str((job or {}).get("out", ""))
        ).name
        st.rerun()
    if not job:
        return
    p = build_summary(job)
    name = Path(str(job.get("out", ""))).name
    if state in ("starting", "running"):
        st.progress(p["fraction"], text=webapp.plain(f"{name}: {p['text']}"))
        c1, c2, c3 = st.columns([1, 1, 1])
        c1.caption(f"elapsed {p['elapsed']}")
        c2.caption(f"remaining {p['remaining']}")
        if c3.button("Cancel build", key="dataset_build_cancel"):
            st.toast(reg.build_cancel())
    elif state == "finished":
        st.success(webapp.plain(f"Last build ({name}): {p['text']}."))
    elif state == "cancelled":
        st.warning(webapp.plain(f"Last build ({name}) was cancelled."))
    else:
        st.error(webapp.plain(f"Last build ({name}) {state}: {job.get('error', '')}"))


def pick_dataset() -> Path | None:
    ds = webapp.datasets_available()
    other = "another folder ..."
    if st.session_state.get("dataset_pick_next") in ds:
        st.session_state["dataset_pick"] = st.session_state.pop("dataset_pick_next")
    if ds:
        label = st.selectbox("Dataset", [*ds, other], key="dataset_pick")
    else:
        st.info("No dataset is built yet: build one above, or open an image folder.")
        opened = st.toggle("Open an image folder", key="dataset_open_folder")
        label = other if opened else None
    if label == other:
        path = st.text_input(
            "Folder with train/<Class Name>/ and test/<Class Name>/",
            key="dataset_folder",
            placeholder="a folder under the artifacts or data folder",
        )
        if not path:
            return None
        try:
            # Only the server's configured folders, symlinks resolved.
            return path_confine(path)
        except EcgError as e:
            st.error(webapp.plain(e))
            st.stop()
    return ds.get(label)


def browse(root: Path) -> None:
    try:
        man = manifest_read(root)
    except EcgError as e:
        st.error(webapp.plain(e))
        return
    st.subheader(f"{webapp.plain(root.name)}: {len(man)} images")
    notes = folder_notes(root)  # an image folder: how its folders read
    if notes:
        st.markdown("**Class folders, as they will be read**")
        for line in notes:
            if line.startswith("warning:"):
                st.warning(webapp.plain(line.removeprefix("warning: ")))
            else:
                st.caption(webapp.plain(line))
    if man.attrs.get("outside"):
        st.warning(
            f"Skipped {man.attrs['outside']} manifest rows whose path leaves "
            "the dataset folder."
        )
    a, b = st.columns([1, 1])
    a.altair_chart(charts.distribution_chart(man), width="stretch", key="dataset_dist")
    with b:
        st.markdown("**Images per record**")
        st.dataframe(
            counts_by_record(man), hide_index=True, height=330, key="dataset_records"
        )
    st.subheader("Samples")
    c1, c2, c3 = st.columns(3)
    classes = c1.multiselect("Class", list(CLASSES), key="dataset_f_class")
    splits = c2.multiselect("Split", ["train", "test"], key="dataset_f_split")
    records = c3.multiselect(
        "Record", sorted(man["record"].astype(str).unique()), key="dataset_f_record"
    )
    seed = st.number_input("Shuffle", 0, 10_000, 0, key="dataset_f_seed")
    rows = manifest_filter(man, classes, splits, records, n=24, seed=int(seed))
    if rows.empty:
        st.info("No image matches these filters.")
        return
    cols = st.columns(GRID_COLS)
    shown = 0
    for _, r in rows.iterrows():
        pic = sample_image(root, r["path"])
        if pic is None:
            continue
        where = (
            f"{r['database']} {r['record']} @ {r['time_s']:.2f} s"
            if r["sample"] >= 0
            else Path(r["path"]).name
        )
        cols[shown % GRID_COLS].image(
            pic,
            caption=webapp.plain(f"{r['class']} · {r['split']} · {where}"),
            width="stretch",
        )
        shown += 1
    if shown < len(rows):
        st.warning(f"Skipped {len(rows) - shown} missing or unreadable pictures.")
    st.subheader("Enlarged view")
    labels = [f"{r['path']}" for _, r in rows.iterrows()]
    pick = st.selectbox("Sample", labels, key="dataset_enlarge")
    r = rows[rows["path"] == pick].iloc[0]
    a, b = st.columns([1, 1])
    pic = sample_image(root, r["path"])
    if pic is None:
        a.warning("This picture is missing or unreadable.")
    else:
        a.image(pic, caption=webapp.plain(pick), width="stretch")
    spec = RenderSpec()
    sig = sample_signal(r, spec, seed=int(dataset_options(root).get("seed", 0)))
    if sig is None:
        b.info(
            "The source record is not in the data folder (or the image came from "
            "a plain folder), so no signal to show."
        )
    else:
        b.altair_chart(
            charts.window_chart(*sig, spec.window_before_s, spec.window_after_s),
            width="stretch",
            key="dataset_signal",
        )
        b.caption(
            f"record {r['database']}/{r['record']}, beat at {r['time_s']:.3f} s "
            f"(symbol {r['symbol']}); shaded: the drawn window."
        )


def page() -> None:
    st.title("Dataset")
    build_section()
    root = pick_dataset()
    if root is None:
        st.info("No dataset yet: build one above, or point at an image folder.")
        return
    browse(root)


page()
