"""index.html of a scan: one self-contained page (inline CSS, no script, no outside reference).

Counts by label, every analysed file most suspicious first, then the unreadable files with their reasons.
Every file name and reason is HTML-escaped: names come from whoever filled the folder.
"""

from __future__ import annotations

import html
import os
import time
import urllib.parse
from pathlib import Path
from typing import Optional, Sequence

from ..detect.report import LABEL_COLOURS
from ..detect.verdict import LABEL_NAMES, LABELS, display_label
from .rows import OK, ScanRow

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#222;max-width:1200px}
h1{margin-bottom:.2rem} .meta{color:#666;margin-top:0}
table{border-collapse:collapse;width:100%;margin:1rem 0}
th,td{padding:.3rem .5rem;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
th{background:#f5f5f5} td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{color:#fff;border-radius:4px;padding:.1rem .4rem;white-space:nowrap}
.path{color:#777;font-size:.85em;word-break:break-all} .counts td{width:auto}
.note{color:#777;font-size:.85em}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _score(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _badge(label: str) -> str:
    colour = LABEL_COLOURS.get(label, "#555")
    return f'<span class="badge" style="background:{colour}">{_e(display_label(label))}</span>'


def _common_root(rows: Sequence[ScanRow]) -> Optional[str]:
    paths = [row.path for row in rows if os.path.isabs(row.path)]
    if not paths:
        return None
    try:
        root = os.path.commonpath(paths)
    except ValueError:  # different drives
        return None
    return root if len(paths) > 1 else os.path.dirname(root)


def _shown(path: str, root: Optional[str]) -> str:
    """A path relative to the files' common folder (shorter, and what tells two IMG_0001.jpg apart)."""
    if root and path.startswith(root):
        return os.path.relpath(path, root)
    return path


def _link(row: ScanRow, out: Path) -> str:
    if not row.result_dir:
        return ""
    try:
        relative = os.path.relpath(Path(row.result_dir) / "result.json", out)
    except ValueError:
        return ""
    href = urllib.parse.quote(Path(relative).as_posix())
    return f' <a href="{_e(href)}">result</a>'


def _file_cell(row: ScanRow, root: Optional[str], out: Optional[Path] = None) -> str:
    shown = _shown(row.path, root)
    where = f'<div class="path">{_e(shown)}</div>' if shown != row.name else ""
    return f"<td>{_e(row.name)}{_link(row, out) if out is not None else ''}{where}</td>"


def _notes(row: ScanRow, root: Optional[str]) -> str:
    notes = []
    if row.duplicate_of:
        notes.append(f"duplicate of {_e(_shown(row.duplicate_of, root))}")
    if row.from_store:
        notes.append("from the result store")
    return f'<span class="note">{"; ".join(notes)}</span>'


def _counts_table(summary) -> str:
    cells = [f"<tr><td>{_badge(label)}</td><td class=num>{summary.labels.get(label, 0)}</td></tr>"
             for label in LABELS if summary.labels.get(label)]
    for name, count in (("unreadable", summary.unreadable), ("failed", summary.failed)):
        if count:
            cells.append(f"<tr><td>{name}</td><td class=num>{count}</td></tr>")
    cells.append(f"<tr><th>files</th><th class=num>{summary.files}</th></tr>")
    return f'<table class="counts" style="width:auto">{"".join(cells)}</table>'


def _files_table(rows: Sequence[ScanRow], root: Optional[str], out: Path) -> str:
    body = []
    for rank, row in enumerate(rows, 1):
        body.append(
            f"<tr><td class=num>{rank}</td>{_file_cell(row, root, out)}"
            f"<td>{_badge(row.label)}</td><td class=num>{_score(row.score)}</td>"
            f"<td class=num>{_score(row.max_score)}</td><td class=num>{row.frames}</td>"
            f"<td>{_e(row.kind)}</td><td>{_e(row.decided_by)}</td><td>{_notes(row, root)}</td></tr>")
    head = ("<tr><th>#</th><th>file</th><th>label</th><th>P(fake)</th><th>max</th><th>frames</th><th>kind</th>"
            "<th>decided by</th><th>notes</th></tr>")
    return f"<table>{head}{''.join(body)}</table>"


def _unreadable_table(rows: Sequence[ScanRow], root: Optional[str]) -> str:
    body = "".join(f"<tr>{_file_cell(row, root)}<td>{_e(row.status)}</td><td>{_e(row.error)}</td></tr>"
                   for row in rows)
    return f"<table><tr><th>file</th><th>status</th><th>reason</th></tr>{body}</table>"


def overview_html(rows: Sequence[ScanRow], summary, out: Path) -> str:
    """The page for rows sorted most suspicious first (see rows.sort_rows) and their ScanSummary."""
    analysed = [row for row in rows if row.status == OK]
    problems = [row for row in rows if row.status != OK]
    root = _common_root(rows)
    speed = f" · {summary.files_per_s:g} files/s this run" if summary.files_per_s else ""
    meta = (f"{summary.files} files under {_e(root or '-')} · model {_e(summary.model)} · "
            f"{summary.new} analysed this run, {summary.reused} kept from an earlier run{speed} · "
            f"{time.strftime('%Y-%m-%d %H:%M')}")
    verdict = f"<p>Most severe label: {_badge(summary.label)}</p>" if summary.label else ""
    legend = ", ".join(f"{_e(LABEL_NAMES[label])}" for label in LABELS)
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        "<meta name=viewport content='width=device-width,initial-scale=1'>",
        f"<title>Apate scan: {summary.files} files</title><style>{_CSS}</style></head><body>",
        f"<h1>Apate scan</h1><p class=meta>{meta}</p>", verdict,
        f"<h2>Counts by label</h2>{_counts_table(summary)}",
        f"<h2>Files, most suspicious first ({len(analysed)})</h2>",
        f"<p class=note>Labels: {legend}. P(fake) is the model's score (a video's mean over sampled frames).</p>",
        _files_table(analysed, root, out) if analysed else "<p>No file could be analysed.</p>",
    ]
    if problems:
        parts.append(f"<h2>Unreadable files ({len(problems)})</h2>{_unreadable_table(problems, root)}")
    parts.append("</body></html>\n")
    return "".join(parts)
