"""Models page pieces: one card per model (its model card, loaded or not, device, memory, Load/Unload), the
default device, the loaded-models table and the checkpoint import (inferred architecture or a key-by-key
mismatch, an editable card, Save). The engine side is apate_core.model_catalog."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Optional

import streamlit as st

from apate_core import model_catalog, monitoring
from apate_core.errors import ApateError
from apate_core.model_catalog import CheckpointInspection, KeyReport, ModelEntry
from apate_core.settings import Settings
from app import ui

ORIGIN_BADGES = {"shipped": ":green-badge[shipped]", "imported": ":blue-badge[imported]",
                 "checkpoint": ":blue-badge[checkpoint]", "architecture": ":orange-badge[untrained architecture]",
                 "random": ":orange-badge[random weights, demo only]", "built-in": ":gray-badge[built-in]"}
UPLOAD_KEY = "models_import_upload"
FLASH_KEY = "models_flash"


# --------------------------------------------------------------------------------------------- messages
def flash(kind: str, text: str) -> None:
    """A message shown once, at the top of the next run (after st.rerun)."""
    st.session_state[FLASH_KEY] = (kind, text)


def show_flash() -> None:
    message = st.session_state.pop(FLASH_KEY, None)
    if message is None:
        return
    kind, text = message
    if kind == "success":
        st.success(text, icon=":material/check_circle:")
    else:
        st.error(text, icon=":material/block:")


# --------------------------------------------------------------------------------------------- device, loaded
def device_choice(settings: Settings) -> str:
    devices = model_catalog.available_devices()
    current = model_catalog.default_device(settings)
    chosen = st.radio("Default device for loading", devices, index=devices.index(current) if current in devices
                      else 0, key="models_device", horizontal=True, format_func=_device_label,
                      help="Where the Load buttons below put a model. Applies to this server process.")
    if chosen != current:
        model_catalog.set_default_device(chosen)
    try:
        configured = settings.resolved_device()
    except ApateError as exc:
        configured = f"unavailable ({exc})"
    st.caption(f"Loads from this page go to **{chosen}**. Detect, Protect, Live and the CLI keep using "
               f"`APATE_DEVICE` ({settings.device}, here **{configured}**).")
    return chosen


def _device_label(device: str) -> str:
    if device == "cuda":
        import torch

        return f"cuda ({torch.cuda.get_device_name(0)})"
    return "cpu"


def loaded_table() -> None:
    held = model_catalog.loaded()
    if held:
        total = sum(m.memory_bytes for m in held)
        st.markdown(f"**Loaded from this page:** {len(held)} model(s), {model_catalog.human_bytes(total)} of "
                    "parameters and buffers")
        st.dataframe([{"model": m.key, "device": m.device, "memory": model_catalog.human_bytes(m.memory_bytes),
                       "parameters": f"{m.parameters:,}", "load time": f"{m.seconds:.2f} s"} for m in held],
                     hide_index=True)
    else:
        st.caption("No model loaded from this page yet.")
    alive = monitoring.loaded_models()
    if alive:
        st.caption("Alive in this process (every page and cache, as /metrics counts them): "
                   + ", ".join(sorted(set(alive))))


# --------------------------------------------------------------------------------------------- one model
def entry_card(entry: ModelEntry, settings: Settings) -> None:
    info = next((m for m in model_catalog.loaded() if m.key == entry.key), None)
    with st.container(border=True, key=f"models_entry_{entry.key}"):
        body, state, action = st.columns([6, 2.2, 1.1], vertical_alignment="center")
        body.markdown(f"**{entry.title}** {ORIGIN_BADGES.get(entry.origin, '')}  \n{entry.description}")
        sha = f"`{entry.sha256[:16]}…`" if entry.sha256 else "—"
        body.caption(f"`{entry.key}` · architecture {entry.architecture} · weights sha256 {sha} · "
                     f"{model_catalog.human_bytes(entry.size_bytes)}")
        if not entry.loadable:
            state.caption("An algorithm: nothing to load")
        elif info is not None:
            memory = model_catalog.human_bytes(info.memory_bytes)
            state.markdown(f":green-badge[loaded] on **{info.device}**  \n{memory}"
                           f" · {info.parameters:,} parameters")
            if action.button("Unload", key=f"models_unload_{entry.key}", icon=":material/eject:"):
                model_catalog.unload(entry.key)
                flash("success", f"Unloaded {entry.key}.")
                st.rerun()
        else:
            state.caption("Not loaded")
            if action.button("Load", key=f"models_load_{entry.key}", icon=":material/memory:"):
                _load(entry, settings)
        with st.expander("Model card", icon=":material/description:"):
            card_details(entry)
            if entry.editable:
                card_editor(entry, settings)


def _load(entry: ModelEntry, settings: Settings) -> None:
    try:
        with st.spinner(f"Loading {entry.title}…"):
            info = model_catalog.load(entry.key, None, settings)
    except ApateError as exc:
        flash("error", f"{entry.title} could not be loaded. {exc}")
    else:
        flash("success", f"Loaded {entry.key} on {info.device} ({model_catalog.human_bytes(info.memory_bytes)}).")
    st.rerun()


def card_details(entry: ModelEntry) -> None:
    rows = [("Trained on", entry.trained_on or "—"), ("Licence", entry.licence or "—"),
            ("Source", entry.source or "—"), ("Weights", str(entry.path) if entry.path else "—"),
            ("Weights SHA-256", f"`{entry.sha256}`" if entry.sha256 else "—")]
    st.markdown("\n".join(f"- **{label}:** {value}" for label, value in rows))
    metrics = entry.metrics
    if metrics:
        st.markdown("**Metrics**")
        if isinstance(metrics, (dict, list)):
            st.json(metrics, expanded=1)
        else:
            st.write(metrics)
    with st.popover("Full model card", icon=":material/data_object:"):
        st.json(dict(entry.card), expanded=False)


def card_editor(entry: ModelEntry, settings: Settings) -> None:
    card = entry.card
    k = entry.key
    st.markdown("**Edit the card**")
    name = st.text_input("Name", card.get("name") or entry.name, key=f"models_card_name_{k}")
    trained_on = st.text_area("Trained on", _as_text(card.get("trained_on")), key=f"models_card_trained_{k}")
    metrics = st.text_area("Metrics (a JSON object, or text)", _as_text(card.get("metrics")),
                           key=f"models_card_metrics_{k}")
    c1, c2 = st.columns(2)
    licence = c1.text_input("Licence", _as_text(card.get("licence")), key=f"models_card_licence_{k}")
    source = c2.text_input("Source (where the weights come from)", _as_text(card.get("source")),
                           key=f"models_card_source_{k}")
    notes = st.text_area("Notes", _as_text(card.get("notes")), key=f"models_card_notes_{k}")
    if st.button("Save card", key=f"models_card_save_{k}", icon=":material/save:"):
        try:
            model_catalog.save_card(k, {"name": name, "trained_on": trained_on, "metrics": metrics,
                                        "licence": licence, "source": source, "notes": notes}, settings)
        except (ApateError, TypeError, ValueError) as exc:
            st.error(f"The card was not saved. {exc}", icon=":material/block:")
        else:
            flash("success", f"Saved the card of {entry.name}.")
            st.rerun()


def _as_text(value: Any) -> str:
    if value is None or value == {} or value == []:
        return ""
    return value if isinstance(value, str) else json.dumps(value, indent=1, sort_keys=True)


# --------------------------------------------------------------------------------------------- import
def _label(report_id: str) -> str:
    kind, name = report_id.split(":", 1)
    return f"{name} ({'detector' if kind == 'detector' else 'Protect generator'})"


def _inspection(data: bytes, filename: str, digest: str) -> Optional[CheckpointInspection]:
    cached = st.session_state.get("models_import_inspection")
    if cached and cached[0] == digest:
        return cached[1]
    try:
        with st.spinner("Reading the checkpoint (tensors only: nothing in it is run)…"):
            inspection = model_catalog.inspect_checkpoint(data, filename)
    except ApateError as exc:
        ui.error_card(exc, title="This checkpoint was refused")
        return None
    st.session_state["models_import_inspection"] = (digest, inspection)
    return inspection


def import_panel(settings: Settings) -> None:
    st.markdown("Drop a checkpoint to add it to every page. It is read as **safetensors**, or with "
                "**`torch.load(weights_only=True)`** which never runs code from the file; its keys and shapes "
                "are compared with every architecture Apate knows. It is saved as safetensors with its model card "
                f"under `{settings.models_path}` (detectors in `detectors/`, generators in `<family>/`).")
    upload = st.file_uploader("Drop a checkpoint (.safetensors, .pth, .pt, .ckpt, .bin)",
                              type=[s.lstrip(".") for s in model_catalog.IMPORT_SUFFIXES], key=UPLOAD_KEY)
    if upload is None:
        return
    data = upload.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    imported = st.session_state.setdefault("models_imported", {})
    if digest in imported:
        st.success(f"**{upload.name}** is saved as `{imported[digest]}`: Detect, Protect and the CLI list it.",
                   icon=":material/check_circle:")
        return
    inspection = _inspection(data, upload.name, digest)
    if inspection is None:
        return
    st.caption(f"{inspection.filename} · {inspection.format} · {inspection.tensors} tensors · "
               f"{inspection.parameters:,} values · sha256 `{inspection.sha256[:16]}…`")
    match = inspection.match
    if match is not None:
        st.success(f"Recognised architecture: **{_label(match.id)}**: {match.summary()}.",
                   icon=":material/check_circle:")
    else:
        st.warning("No architecture fits every key and shape of this checkpoint. The closest comes first below; "
                   "the table explains the mismatch key by key.", icon=":material/rule:")
    options = [c.id for c in inspection.candidates]
    arch = st.selectbox("Architecture", options, key=f"models_import_arch_{digest[:12]}", format_func=_label,
                        help="Inferred from the keys and shapes; choose another to see how it compares.")
    report = inspection.report(arch)
    if not report.exact:
        mismatch_table(report)
    _import_form(data, upload.name, report, digest, settings)


def mismatch_table(report: KeyReport) -> None:
    st.error(f"**{_label(report.id)} does not fit:** {report.summary()}.", icon=":material/block:")
    rows = report.rows()
    if rows:
        shown = len(rows)
        total = report.n_missing + report.n_unexpected + report.n_misshaped
        st.dataframe(rows, hide_index=True)
        if total > shown:
            st.caption(f"First {model_catalog.SHOW_KEYS} of each kind shown ({shown} of {total} keys).")


def _import_form(data: bytes, filename: str, report: KeyReport, digest: str, settings: Settings) -> None:
    from pathlib import Path

    d = digest[:12]
    st.markdown("**Model card** (you can edit it later on this page)")
    c1, c2 = st.columns(2)
    name = c1.text_input("Name", Path(filename).stem, key=f"models_import_name_{d}",
                         help="The file name under APATE_MODELS_DIR: letters, digits, '.', '_' or '-'")
    licence = c2.text_input("Licence", key=f"models_import_licence_{d}")
    trained_on = st.text_area("Trained on", key=f"models_import_trained_{d}",
                              placeholder="Data set, its version and split, as its publisher states")
    metrics = st.text_area("Metrics (a JSON object, or text)", key=f"models_import_metrics_{d}",
                           placeholder='{"roc_auc": 0.91, "evaluated_on": "..."}')
    source = st.text_input("Source (where the weights come from)", key=f"models_import_source_{d}",
                           placeholder="https://… or a paper")
    notes = st.text_area("Notes", key=f"models_import_notes_{d}")
    if st.button("Save", key=f"models_import_save_{d}", type="primary", disabled=not report.exact,
                 icon=":material/save:"):
        card = {"name": name, "licence": licence, "trained_on": trained_on, "metrics": metrics, "source": source,
                "notes": notes}
        try:
            with st.spinner("Checking the weights against the architecture and saving…"):
                imported = model_catalog.import_checkpoint(data, filename, report.id, card, settings)
        except (ApateError, TypeError, ValueError) as exc:
            if isinstance(exc, ApateError):
                ui.error_card(exc, title="Not saved")
            else:
                st.error(f"**Not saved.** {exc}", icon=":material/block:")
            return
        st.session_state["models_imported"][digest] = imported.name
        st.session_state.pop("models_import_inspection", None)
        where = ("Detect's model list and `apate detect --model " + imported.name + "`" if imported.kind == "detector"
                 else f"Protect's model sources for {imported.architecture} and `apate protect --model "
                      f"{imported.architecture} --weights {imported.path}`")
        flash("success", f"Saved {filename} as `{imported.name}` ({_label(report.id)}, weights sha256 "
                         f"`{imported.weights_sha256[:16]}…`). It is now in {where}.")
        st.rerun()
