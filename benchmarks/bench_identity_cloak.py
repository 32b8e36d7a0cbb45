"""Identity cloak efficacy on every real face available offline, at the default settings.

Faces: the face photos of ``$APATE_DETECT_DATA`` real/ (sources listed in FACE_SOURCES), every still photo of
``$APATE_TESTDATA`` (those with a face), and the sample photos of the face-api and face_recognition packages
(``python -m apate_core.protect.identity.samples``). For each photo: Apate's identity job with its defaults
(automatic budget), then the saved file re-detected and re-aligned as saved, after JPEG 75, at half size and after JPEG 50
(a condition the automatic budget never checks).
Prints a markdown table and, with --write-card, stores the figures in the face descriptor's card, where the
Protect page and the README read them.

    .venv/bin/python benchmarks/bench_identity_cloak.py [--every K] [--threads N] [--write-card]
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from apate_core.protect.identity import job as identity  # noqa: E402
from apate_core.protect.identity.samples import cached_samples  # noqa: E402
from apate_core.protect.job import ImageInput  # noqa: E402

CARD = ROOT / "assets" / "models" / "identity" / "face-descriptor.json"
FACE_SOURCES = ("kushagragupta-23/", "muxspace/facial_expressions", "cszn/KAIR", "DariusAf/MesoNet",
                "ai-forever/ghost", "haofanwang/inswapper")
STILLS = {".jpg", ".jpeg", ".png", ".webp"}


def detect_data_faces() -> list[Path]:
    root = Path(os.environ.get("APATE_DETECT_DATA", ROOT.parent / "shared" / "detect-data"))
    manifest = root / "MANIFEST.tsv"
    if not manifest.is_file():
        return []
    with manifest.open(newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return [root / r["file"] for r in rows if r["label"] == "real" and r["source_repo"].startswith(FACE_SOURCES)]


def testdata_stills() -> list[Path]:
    root = Path(os.environ.get("APATE_TESTDATA", ROOT.parent / "shared" / "testdata"))
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in STILLS and "fake" not in p.parts)


def photos(every: int, part: tuple[int, int]) -> list[tuple[str, Path]]:
    found = [("detect-data", p) for p in detect_data_faces()] + [("testdata", p) for p in testdata_stills()] \
        + [("package samples", p) for p in cached_samples()]
    return found[::every][part[0]::part[1]]


def run(every: int, part: tuple[int, int], save: Optional[Path] = None) -> dict:
    params = identity.CloakParams()
    net = identity.load_face_descriptor()
    rows, skipped = [], 0
    todo = photos(every, part)
    for n, (group, path) in enumerate(todo, 1):
        rgb = np.asarray(Image.open(path).convert("RGB"))
        result = identity.protect_identity(ImageInput(path.name, "", rgb), params, net)
        if not result.faces:
            skipped += 1
            continue
        m = result.metrics
        for face in range(len(result.faces)):
            checks = {c.condition: c for c in result.checks if c.face == face}
            rows.append({"group": group, "photo": path.name, "face": face, "ssim": m["quality"]["ssim"],
                         "psnr": m["quality"]["psnr"], "epsilon_8bit": round(m["epsilon_8bit"]),
                         "seconds_per_face": m["seconds_per_face"],
                         **{cond: check.to_dict() for cond, check in checks.items()}})
        if save is not None:  # after every photo, so that a long run can be looked at (or merged) early
            save.write_text(json.dumps({"rows": rows, "photos_without_face": skipped, "photos": n,
                                        "cpu_threads": torch.get_num_threads()}, indent=1))
        print(f"[{n}/{len(todo)}] {path.name}: {len(result.faces)} face(s), eps {m['epsilon_8bit']:.0f}/255, "
              f"SSIM {m['quality']['ssim']:.4f}, unmatched {result.unmatched():.0%}", file=sys.stderr, flush=True)
    return {"rows": rows, "photos_without_face": skipped, "photos": len(todo), "cpu_threads": torch.get_num_threads()}


def share(rows: list[dict], condition: str) -> float:
    return sum(not r[condition]["matched"] for r in rows) / len(rows)


def summary(data: dict, every: int) -> dict:
    rows = data["rows"]
    budgets = [r["epsilon_8bit"] for r in rows]
    return {
        "measured_on": datetime.date.today().isoformat(), "faces": len(rows),
        "sample": "every photo" if every == 1 else f"every {every}th photo of the list (a systematic sample)",
        "photos": len({r["photo"] for r in rows}), "photos_without_face": data["photos_without_face"],
        "unmatched_saved": share(rows, "as saved"), "unmatched_jpeg75": share(rows, "JPEG 75"),
        "unmatched_half": share(rows, "resized to half"),
        "unmatched_jpeg50": share(rows, "JPEG 50"),  # a condition the automatic budget never checks
        "not_redetected_saved": sum(not r["as saved"]["found"] for r in rows) / len(rows),
        "ssim_min": min(r["ssim"] for r in rows), "ssim_median": statistics.median(r["ssim"] for r in rows),
        "psnr_median": statistics.median(r["psnr"] for r in rows if r["psnr"] is not None),
        "budget_255": {str(b): budgets.count(b) for b in sorted(set(budgets))},
        "seconds_per_face_median": statistics.median(r["seconds_per_face"] for r in rows),
        "cpu_threads": data["cpu_threads"],  # per process: parts run side by side
        "recogniser": identity.RECOGNISER,
        "note": "one recogniser only: ArcFace and commercial services are not measured",
    }


def table(data: dict, s: dict) -> str:
    lines = ["| faces from | faces | no longer matched (as saved) | after JPEG 75 | at half size | after JPEG 50 | SSIM min |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    groups = sorted({r["group"] for r in data["rows"]})
    for g in groups + ["all"]:
        rows = [r for r in data["rows"] if g in ("all", r["group"])]
        lines.append(f"| {g} | {len(rows)} | {share(rows, 'as saved'):.1%} | {share(rows, 'JPEG 75'):.1%} | "
                     f"{share(rows, 'resized to half'):.1%} | {share(rows, 'JPEG 50'):.1%} | {min(r['ssim'] for r in rows):.4f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--every", type=int, default=1, help="every K-th photo only (a systematic sample)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--write-card", action="store_true", help="store the figures in the descriptor's card")
    parser.add_argument("--part", default="0/1", help="I/N: only photos I, I+N, ... (run N processes at once)")
    parser.add_argument("--json", metavar="PATH", help="write every face's row here")
    parser.add_argument("--merge", nargs="+", metavar="JSON", help="summarise the --json files of finished parts")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    if args.merge:
        parts = [json.loads(Path(p).read_text()) for p in args.merge]
        data = {"rows": [r for p in parts for r in p["rows"]],
                "photos_without_face": sum(p["photos_without_face"] for p in parts),
                "photos": sum(p["photos"] for p in parts), "cpu_threads": max(p["cpu_threads"] for p in parts)}
    else:
        index, count = (int(v) for v in args.part.split("/"))
        data = run(args.every, (index, count), Path(args.json) if args.json else None)
    if not data["rows"]:
        print("no faces found: fetch the samples (python -m apate_core.protect.identity.samples) or set "
              "APATE_DETECT_DATA / APATE_TESTDATA", file=sys.stderr)
        return 1
    s = summary(data, args.every)
    took = f"{len(args.merge)} parts merged" if args.merge else f"{time.perf_counter() - started:.0f} s"
    print(f"# Identity cloak efficacy, {s['measured_on']} ({took})\n")
    print(table(data, s) + "\n")
    print(json.dumps(s, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=1))
    if args.write_card and (args.merge or args.part == "0/1"):
        card = json.loads(CARD.read_text())
        card["cloak_efficacy"] = s
        CARD.write_text(json.dumps(card, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
