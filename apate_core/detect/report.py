"""Detect results as files: result.json, heatmap PNGs (a folder or a zip) and a self-contained HTML report.

The HTML report has no outside references: plotly.js is inlined with the timeline figure and the
images are base64 data URIs, so it opens offline and can be mailed as one file.
"""

from __future__ import annotations

import base64
import html
import io
import json
import zipfile
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .face_evidence import describe as describe_face_evidence
from .pipeline import DetectResult
from .verdict import describe_segment, display_label, explain

LABEL_COLOURS = {"fake": "#c62828", "real": "#2e7d32", "uncertain": "#ef6c00", "segments": "#ad1457",
                 "declared": "#6a1b9a"}


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def jpeg_bytes(image: np.ndarray, quality: int = 85) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def overlay(result: DetectResult, index: int, opacity: float = 0.5) -> Optional[np.ndarray]:
    """The kept frame with its heatmap blended over it, or None when either was not kept."""
    from .cam import overlay_heatmap

    frame, heat = result.frame(index), result.heatmap(index)
    if frame is None or heat is None:
        return None
    return overlay_heatmap(frame, heat, opacity=opacity)


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


# --------------------------------------------------------------------------------------------
# result.json and heatmaps
# --------------------------------------------------------------------------------------------


def result_json(result: DetectResult) -> str:
    return json.dumps(result.data, indent=2, default=str)


def heatmap_files(result: DetectResult, opacity: float = 0.5) -> dict[str, bytes]:
    """Relative path -> PNG bytes: the raw heatmaps (as result.json names them) and, for kept
    frames, the frame and its overlay."""
    files: dict[str, bytes] = {}
    for record in result.frames:
        if record.get("heatmap"):
            heat = result.arrays.get(f"heatmap_{record['index']:06d}")
            if heat is not None:
                files[record["heatmap"]] = png_bytes(heat)
    for index in result.top_frames():
        frame = result.frame(index)
        if frame is not None:
            files[f"frames/{index:06d}.jpg"] = jpeg_bytes(frame)
        blended = overlay(result, index, opacity)
        if blended is not None:
            files[f"overlays/{index:06d}.jpg"] = jpeg_bytes(blended)
    return files


def heatmaps_zip(result: DetectResult) -> bytes:
    """A zip of result.json, heatmaps/*.png, frames/*.jpg and overlays/*.jpg."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("result.json", result_json(result))
        for name, data in heatmap_files(result).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def write_result_dir(result: DetectResult, out_dir: str | Path, *, html_report: bool = True) -> Path:
    """Write result.json, heatmap PNGs (and frames, overlays, report.html) under out_dir; returns result.json's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, data in heatmap_files(result).items():
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    if html_report:
        (out / "report.html").write_text(report_html(result), encoding="utf-8")
    path = out / "result.json"
    path.write_text(result_json(result), encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------
# Timeline figure (plotly only: the page and the HTML report both use it)
# --------------------------------------------------------------------------------------------


def timeline_figure(result: DetectResult, selected: Optional[int] = None):
    """Per-frame P(fake) over time: threshold lines, suspicious segments shaded, hover with time and score.

    Each point's customdata is its frame index (the page maps a selected point back to its frame).
    """
    import plotly.graph_objects as go

    data = result.data
    frames = data["frames"]
    low, high = data["band"]["low"], data["band"]["high"]
    times = [f["time"] for f in frames]
    scores = [f["score"] for f in frames]
    fig = go.Figure()
    for segment in data.get("suspicious_segments", []):
        fig.add_vrect(x0=segment["start"], x1=segment["end"], fillcolor="#e53935", opacity=0.15, line_width=0,
                      layer="below")
    fig.add_hrect(y0=low, y1=high, fillcolor="#ffb74d", opacity=0.12, line_width=0, layer="below")
    fig.add_trace(go.Scatter(
        x=times, y=scores, mode="lines+markers", name="P(fake)", customdata=[f["index"] for f in frames],
        line={"color": "#1e88e5", "width": 2}, marker={"size": 7},
        hovertemplate="t = %{x:.2f} s<br>P(fake) = %{y:.3f}<extra>frame %{customdata}</extra>",
    ))
    if selected is not None:
        picked = [f for f in frames if f["index"] == selected and f["score"] is not None]
        if picked:
            fig.add_trace(go.Scatter(x=[picked[0]["time"]], y=[picked[0]["score"]], mode="markers", name="shown",
                                     marker={"size": 14, "color": "rgba(0,0,0,0)", "line": {"width": 2, "color": "#111"}},
                                     hoverinfo="skip"))
    fig.add_hline(y=high, line_dash="dash", line_color=LABEL_COLOURS["fake"],
                  annotation_text=f"fake ≥ {high:g}", annotation_position="top left")
    fig.add_hline(y=low, line_dash="dot", line_color=LABEL_COLOURS["real"],
                  annotation_text=f"real ≤ {low:g}", annotation_position="bottom left")
    fig.update_layout(height=300, margin={"l": 10, "r": 10, "t": 30, "b": 10}, showlegend=False,
                      xaxis_title="time (s)", yaxis_title="P(fake)", yaxis_range=[-0.04, 1.04], hovermode="closest")
    # clickmode/dragmode left unset: Streamlit then makes a click select a point (pan to move)
    return fig


# --------------------------------------------------------------------------------------------
# Self-contained HTML report
# --------------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{margin-bottom:.2rem} .muted{color:#666} .card{border:1px solid #ddd;border-radius:10px;padding:1rem 1.2rem;margin:1rem 0}
.verdict{font-size:1.6rem;font-weight:700} .warn{background:#fff3e0;border-color:#ffb74d}
table{border-collapse:collapse;width:100%} td,th{border-bottom:1px solid #eee;padding:.3rem .5rem;text-align:left;font-size:.9rem}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:1rem}
.gallery figure{margin:0} .gallery img{width:49%;border-radius:6px} figcaption{font-size:.85rem;color:#444}
"""


def _fmt(value: Any) -> str:
    return "–" if value is None else f"{value:.3f}" if isinstance(value, float) else html.escape(str(value))


def _verdict_html(data: dict) -> str:
    label, verdict = data["label"], data["verdict"]
    agg = data["aggregates"]
    colour = LABEL_COLOURS.get(label, "#333")
    band = data["band"]
    segments = "".join(f"<li>{html.escape(describe_segment(s))}</li>" for s in verdict["segments"])
    faces = describe_face_evidence(data.get("face_evidence"))
    return (
        f'<div class="card"><div class="verdict" style="color:{colour}">{html.escape(display_label(label).upper())}'
        f' · P(fake) {_fmt(data["score"])}</div>'
        f'<p>{html.escape(explain(verdict))}</p>'
        + (f"<p>Generated segments:</p><ul>{segments}</ul>" if segments else "")
        + (f'<p class="muted">{html.escape(faces)}</p>' if faces else "")
        + f'<div class="muted">Mean of {agg["count"]} frame scores (max {_fmt(agg["max"])}, '
        f'top-{agg["top_k"]} mean {_fmt(agg["top_k_mean"])}). Real ≤ {band["low"]:g} &lt; uncertain &lt; '
        f'{band["high"]:g} ≤ fake.</div></div>'
    )


def _model_html(model: dict) -> str:
    warn = ""
    if model.get("untrained"):
        warn = ('<p><strong>Warning: this model is untrained (random initialisation); its scores carry no '
                'meaning.</strong></p>')
    metrics = html.escape(model.get("metrics_summary") or "none reported")
    return (
        f'<div class="card{" warn" if warn else ""}"><h3>Model</h3>{warn}<table>'
        f'<tr><th>name</th><td>{_fmt(model["name"])} ({_fmt(model.get("architecture"))})</td></tr>'
        f'<tr><th>trained on</th><td>{_fmt(model.get("trained_on_summary"))}</td></tr>'
        f'<tr><th>metrics</th><td>{metrics}</td></tr>'
        f'<tr><th>weights sha256</th><td><code>{_fmt(model["weights_sha256"])}</code></td></tr></table></div>'
    )


def _gallery_html(result: DetectResult, limit: int) -> str:
    items = []
    by_index = {f["index"]: f for f in result.frames}
    for index in result.top_frames()[:limit]:
        frame = result.frame(index)
        if frame is None:
            continue
        record = by_index[index]
        imgs = f'<img alt="frame {index}" src="{_data_uri(jpeg_bytes(frame), "image/jpeg")}">'
        blended = overlay(result, index)
        if blended is not None:
            imgs += f' <img alt="heatmap {index}" src="{_data_uri(jpeg_bytes(blended), "image/jpeg")}">'
        faces = f" · {len(record['faces'])} face(s)" if record.get("faces") else ""
        items.append(f'<figure>{imgs}<figcaption>t = {record["time"]:.2f} s · P(fake) {_fmt(record["score"])}'
                     f'{faces}</figcaption></figure>')
    return '<div class="gallery">' + "".join(items) + "</div>" if items else "<p>No frames kept.</p>"


def report_html(result: DetectResult, top: int = 8) -> str:
    """One HTML file: verdict, model card, provenance, the interactive timeline and the top frames."""
    data = result.data
    source = data["input"]
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in data.get("notes", []))
    provenance = "".join(f"<li>{html.escape(line)}</li>" for line in (data.get("provenance") or {}).get("summary", []))
    timeline = ""
    if data["kind"] == "video":
        timeline = ('<div class="card"><h3>Timeline</h3>'
                    + timeline_figure(result).to_html(full_html=False, include_plotlyjs=True) + "</div>")
    params = html.escape(json.dumps(data["params"]))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Apate detect report: {html.escape(source["name"])}</title>
<style>{_CSS}</style></head><body>
<h1>Apate detect report</h1>
<div class="muted">{html.escape(source["name"])} · {html.escape(source["kind"])} ({html.escape(source["format"])}) ·
sha256 <code>{html.escape(source["sha256"])}</code> · Apate {html.escape(data["apate_version"])}</div>
{_verdict_html(data)}
{"<ul>" + notes + "</ul>" if notes else ""}
{_model_html(data["model"])}
<div class="card"><h3>Provenance</h3><ul>{provenance or "<li>–</li>"}</ul></div>
{timeline}
<div class="card"><h3>Most suspicious frames</h3>{_gallery_html(result, top)}</div>
<div class="card"><h3>Parameters</h3><code>{params}</code></div>
</body></html>
"""

