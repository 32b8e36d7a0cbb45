"""Does the ported descriptor behave as a face descriptor on real photos? Distances between faces of the package
sample photos (``python -m apate_core.protect.identity.samples``), aligned by Apate's MTCNN 5-point alignment:
the same person (every pair of obama* photos) should lie under 0.6, different people (obama against biden, and
every two faces of one group photo) over it. Prints a table; --write-card stores it in the descriptor's card.

    .venv/bin/python scripts/face_descriptor_table.py [--write-card]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from apate_core.protect.identity.align import find_faces  # noqa: E402
from apate_core.protect.identity.descriptor import DEFAULT_WEIGHTS, MATCH_THRESHOLD, load_face_descriptor  # noqa: E402
from apate_core.protect.identity.samples import SAMPLES, cached_samples  # noqa: E402
from apate_core.protect.identity.verify import descriptors  # noqa: E402


def described_faces() -> list[tuple[str, str, np.ndarray]]:
    """(person, photo, descriptor) per face: the largest face of a one-person photo, every face of a group."""
    net, people = load_face_descriptor(), {s.name: s for s in SAMPLES}
    out = []
    for path in cached_samples():
        sample = people[path.name]
        rgb = np.asarray(Image.open(path).convert("RGB"))
        faces = find_faces(rgb)
        faces = faces if sample.faces == "several" else faces[:1]
        for n, d in enumerate(descriptors(net, rgb, faces).numpy()):
            person = sample.person if sample.faces != "several" else f"{sample.person}-face{n}"
            out.append((person, path.name, d))
    return out


def pair_rows(faces: list[tuple[str, str, np.ndarray]]) -> list[dict]:
    groups: dict[str, list[float]] = {"same person (obama, 5 photos)": [], "obama vs biden": [],
                                      "two people of one group photo": []}
    for (pa, fa, da), (pb, fb, db) in itertools.combinations(faces, 2):
        d = float(np.linalg.norm(da - db))
        if pa == pb == "obama":
            groups["same person (obama, 5 photos)"].append(d)
        elif {pa, pb} == {"obama", "biden"}:
            groups["obama vs biden"].append(d)
        elif fa == fb and pa != pb:
            groups["two people of one group photo"].append(d)
    rows = []
    for kind, values in groups.items():
        if not values:
            continue
        same = kind.startswith("same")
        right = sum((v <= MATCH_THRESHOLD) == same for v in values)
        rows.append({"pairs": kind, "n": len(values), "min": round(min(values), 3),
                     "median": round(statistics.median(values), 3), "max": round(max(values), 3),
                     "on the right side of 0.6": f"{right}/{len(values)}"})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write-card", action="store_true")
    args = parser.parse_args()
    faces = described_faces()
    if not faces:
        print("no sample photos: run python -m apate_core.protect.identity.samples", file=sys.stderr)
        return 1
    rows = pair_rows(faces)
    print("| pairs | n | min | median | max | on the right side of 0.6 |\n| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['pairs']} | {r['n']} | {r['min']} | {r['median']} | {r['max']} | "
              f"{r['on the right side of 0.6']} |")
    if args.write_card:
        card_path = DEFAULT_WEIGHTS.with_suffix(".json")
        card = json.loads(card_path.read_text())
        card["descriptor_behaviour"] = {"alignment": "Apate's MTCNN 5-point similarity alignment, 150 px crop",
                                        "rows": rows}
        card_path.write_text(json.dumps(card, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
