"""Recipe of ``apate-faceswap``: a linear probe on frozen CLIP ViT-B/16 embeddings of FACE CROPS, real
faces against self-blended faces (SBI, self_blend.py) and the face swaps of the data sources.

    apate train-faceswap --out assets/models/apate-faceswap.safetensors

1. Faces: the real rows of every repository that holds face-swap fakes, the portrait collections of
   ``portrait_sources`` (muxspace/facial_expressions) and scikit-image's astronaut are real faces;
   the ``face-swap`` family rows are fakes. MTCNN finds each image's largest face (P(face) >=
   ``min_face_prob``); the crop is its box grown by 30 % on every side, as face mode crops
   (``faces.crop_with_margin``). Images where no face is found are left out and counted.
2. Self-blends: each real face gives ``sbi_per_face`` fakes (seeded per file), cropped with the
   real face's box. They keep the real face's source repository, so a held-out source takes its
   real faces and their self-blends out together.
3. Embeddings of the crops in ``views`` views (as is + the shared processing policy), cached.
4. Held-out evaluation:
   (a) SBI only: for each source repository, a probe fitted on the real faces and self-blends of the
       other repositories (no face swap at all) scores the held-out repository's real faces and
       face swaps. This is the honest test of SBI: it has never seen a real face swap.
   (b) SBI + face swaps, the face swaps' source held out (``probe.holdout_report``, which also gives
       the family-held-out table and the temperature).
   Both are reported over all held-out real faces and within each repository that holds both
   real faces and face swaps (no repository style to lean on).
5. The shipped probe is fitted on everything (real, SBI, face swaps) and saved as a head with a card.
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ...progress import CancelToken, ProgressCallback, check_cancelled, no_progress
from ...settings import Settings
from .datasets import GENERATED, REAL, LabelledImage, load_data_source
from .embeddings import EmbeddingSet, detector_encoder, embed_rows
from .probe import DEFAULT_C, fit_probe, holdout_report, metrics
from .universal import probe_view

ARCHITECTURE = "clip_probe"
SHIPPED_NAME = "apate-faceswap"
SHIPPED_FILE = "apate-faceswap.safetensors"
FACE_MARGIN = 0.3  # face mode's crop (DetectParams.face_margin)
SWAP_FAMILY = "face-swap"
SBI_FAMILY = "SBI"
PORTRAIT_SOURCES = ("muxspace/facial_expressions",)
ASTRONAUT_SOURCE = "scikit-image/astronaut"
INDEX_FIELDS = ("origin", "crop", "label", "family", "source")


@dataclass(frozen=True)
class FaceSwapOptions:
    sources: tuple[str, ...] = ("detect-data",)
    portrait_sources: tuple[str, ...] = PORTRAIT_SOURCES
    astronaut: bool = True
    sbi_per_face: int = 2
    views: int = 2
    C: float = DEFAULT_C
    seed: int = 0
    threshold: float = 0.6  # the verdict's "fake" line, as apate-universal
    min_face_prob: float = 0.9
    min_within: int = 10  # real faces and face swaps a repository needs for a within-repository figure

    def crop_key(self) -> str:
        return f"m{FACE_MARGIN}-k{self.sbi_per_face}-s{self.seed}-p{self.min_face_prob}"


def shipped_weights_path() -> Path:
    return Path(__file__).resolve().parents[3] / "assets" / "models" / SHIPPED_FILE


# ------------------------------------------------------------------------------------------------
# 1-2. Face crops and self-blends
# ------------------------------------------------------------------------------------------------


def face_rows(settings: Settings, options: FaceSwapOptions) -> list[LabelledImage]:
    """Real faces and face swaps among the data sources' rows (see the module docstring)."""
    rows = [row for name in options.sources for row in load_data_source(name, settings)]
    swap_repos = {r.source for r in rows if r.label == GENERATED and r.family == SWAP_FAMILY}
    real_repos = swap_repos | set(options.portrait_sources)
    return [r for r in rows if (r.label == GENERATED and r.family == SWAP_FAMILY)
            or (r.label == REAL and r.source in real_repos)]


def astronaut_row(directory: Path) -> LabelledImage:
    import skimage.data
    from PIL import Image

    path = Path(directory) / "scikit-image-astronaut.png"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(skimage.data.astronaut()).save(path)
    return LabelledImage(path=path, label=REAL, family="camera", source=ASTRONAUT_SOURCE, generator="astronaut")


def sbi_seed(name: str, k: int, seed: int) -> int:
    digest = hashlib.sha256(f"sbi|{name}|{k}|{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def origin_of(crop_path: str) -> str:
    """The original image a crop came from (a self-blend's name is its real face's plus '~sbiK')."""
    return Path(crop_path).stem.split("~")[0]


def _crops_of(row: LabelledImage, directory: Path, options: FaceSwapOptions) -> list[dict[str, Any]]:
    from PIL import Image

    from ..faces import crop_with_margin, detect_faces
    from .embeddings import load_rgb
    from .self_blend import self_blend

    image = load_rgb(row.path)
    faces = detect_faces(image, backend="mtcnn", min_prob=options.min_face_prob)
    stem = f"{row.path.parent.name}-{row.path.stem}"
    base = {"origin": str(row.path), "source": row.source}
    if not faces:
        return [{**base, "crop": "", "label": row.label, "family": row.family}]
    face = faces[0]  # the largest
    out = []
    crop = directory / f"{stem}.png"
    Image.fromarray(crop_with_margin(image, face, FACE_MARGIN)).save(crop)
    out.append({**base, "crop": crop.name, "label": row.label, "family": row.family})
    if row.label == REAL:
        for k in range(options.sbi_per_face):
            fake = self_blend(image, np.asarray(face.landmarks), sbi_seed(row.path.name, k, options.seed))
            crop = directory / f"{stem}~sbi{k}.png"
            Image.fromarray(crop_with_margin(fake.image, face, FACE_MARGIN)).save(crop)
            out.append({**base, "crop": crop.name, "label": GENERATED, "family": SBI_FAMILY})
    return out


def make_crops(rows: list[LabelledImage], directory: Path, options: FaceSwapOptions,
               progress: ProgressCallback = no_progress,
               cancel: Optional[CancelToken] = None) -> tuple[list[LabelledImage], list[str]]:
    """Face crops (and self-blend crops) of ``rows`` as PNG files under ``directory``, indexed in
    ``index.tsv`` so a rerun only processes new images. Returns the crop rows and the originals
    where no face was found."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    index = directory / "index.tsv"
    done: list[dict[str, Any]] = []
    if index.is_file():
        with open(index, newline="", encoding="utf-8") as handle:
            done = list(csv.DictReader(handle, delimiter="\t"))
    have = {d["origin"] for d in done}
    pending = [r for r in rows if str(r.path) not in have]
    for n, row in enumerate(pending):
        check_cancelled(cancel)
        done.extend(_crops_of(row, directory, options))
        progress((n + 1) / len(pending), f"face crops {n + 1}/{len(pending)}")
        if n % 25 == 24 or n == len(pending) - 1:
            _write_index(index, done)
    wanted = {str(r.path) for r in rows}
    crops = [LabelledImage(path=directory / d["crop"], label=int(d["label"]), family=d["family"], source=d["source"],
                           generator=Path(d["origin"]).name)
             for d in done if d["origin"] in wanted and d["crop"]]
    no_face = sorted({d["origin"] for d in done if d["origin"] in wanted and not d["crop"]})
    return crops, no_face


def _write_index(path: Path, entries: list[dict[str, Any]]) -> None:
    partial = path.with_suffix(".partial")
    with open(partial, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=INDEX_FIELDS, delimiter="\t")
        writer.writeheader()
        writer.writerows({k: e[k] for k in INDEX_FIELDS} for e in entries)
    partial.replace(path)


def embed_faces(detector, settings: Settings, options: FaceSwapOptions, cache_dir: Path,
                progress: ProgressCallback = no_progress,
                cancel: Optional[CancelToken] = None) -> tuple[EmbeddingSet, list[str]]:
    directory = Path(cache_dir) / f"faceswap-{options.crop_key()}"
    rows = face_rows(settings, options)
    if options.astronaut:
        rows.append(astronaut_row(directory / "originals"))
    crops, no_face = make_crops(rows, directory, options, lambda f, m: progress(0.3 * f, m), cancel)
    E = embed_rows(crops, detector_encoder(detector), views=options.views, seed=options.seed,
                   cache=directory / f"{detector.architecture}-raw.npz",
                   progress=lambda f, m: progress(0.3 + 0.6 * f, m), cancel=cancel)
    return probe_view(E, "", True), no_face  # this probe reads CLIP's projected embedding


# ------------------------------------------------------------------------------------------------
# 4. Held-out evaluation
# ------------------------------------------------------------------------------------------------


def sbi_only_logits(E: EmbeddingSet, C: float = DEFAULT_C, cancel: Optional[CancelToken] = None) -> np.ndarray:
    """Leave-one-source-out logits of probes that never see a face swap: each is fitted on the real
    faces and self-blends of the other repositories and scores every row of the held-out one."""
    out = np.full(len(E), np.nan)
    no_swaps = E.family != SWAP_FAMILY
    for source in np.unique(E.source):
        check_cancelled(cancel)
        test = E.source == source
        train = no_swaps & ~test
        if len(np.unique(E.y[train])) == 2:
            out[test] = fit_probe(E.subset(train), C).logits(E.X[test])
    return out


def swap_metrics(E: EmbeddingSet, z: np.ndarray, temperature: float, threshold: float,
                 min_within: int = 10) -> dict[str, Any]:
    """Face swaps against real faces, both held out: over all repositories, and within each
    repository that holds at least ``min_within`` of each."""
    keep = ~np.isnan(z) & ((E.family == SWAP_FAMILY) | (E.y == REAL))
    if not (keep & (E.y == REAL)).any() or not (keep & (E.y == GENERATED)).any():
        return {}
    out: dict[str, Any] = {"overall": metrics(E.y[keep], z[keep], temperature, threshold), "within": {}}
    for source in np.unique(E.source[E.family == SWAP_FAMILY]):
        mask = keep & (E.source == source)
        if min((mask & (E.y == REAL)).sum(), (mask & (E.y == GENERATED)).sum()) >= min_within:
            out["within"][str(source)] = metrics(E.y[mask], z[mask], temperature, threshold)
    sbi = ~np.isnan(z) & ((E.family == SBI_FAMILY) | (E.y == REAL))
    if (sbi & (E.y == GENERATED)).any():
        out["self_blends"] = metrics(E.y[sbi], z[sbi], temperature, threshold)
    return out


def faceswap_report(E: EmbeddingSet, options: FaceSwapOptions,
                    cancel: Optional[CancelToken] = None) -> dict[str, Any]:
    """``holdout_report`` (source- and family-held-out, temperature) plus the face-swap figures of
    (a) SBI-only probes and (b) probes with SBI and face swaps, the face swaps' source held out."""
    from .probe import source_holdout_logits

    report = holdout_report(E, options.C, options.threshold, target_fpr=None, cancel=cancel)
    temperature = report["temperature"]
    z_sbi = sbi_only_logits(E, options.C, cancel)
    z_all = source_holdout_logits(E, options.C, cancel)
    report["faceswap"] = {}
    for view_name, view_mask in (("as_is", E.view == 0), ("processed", E.view > 0)):
        if view_mask.any():
            V = E.subset(view_mask)
            report["faceswap"][view_name] = {
                "sbi_only": swap_metrics(V, z_sbi[view_mask], temperature, options.threshold, options.min_within),
                "with_swaps_source_holdout": swap_metrics(V, z_all[view_mask], temperature, options.threshold,
                                                          options.min_within)}
    return report


def headline_metrics(report: dict[str, Any]) -> dict[str, Any]:
    """The card's metrics: held-out face-swap figures of the files as they are, and the overall
    source-held-out figure."""
    def rounded(m: dict[str, Any]) -> dict[str, Any]:
        return {k: round(float(v), 4) for k, v in m.items()}

    out: dict[str, Any] = {}
    for scheme, figures in report.get("faceswap", {}).get("as_is", {}).items():
        if figures:
            out[f"{scheme}_faceswap"] = rounded(figures["overall"])
            for source, m in figures["within"].items():
                out[f"{scheme}_within_{source}"] = rounded(m)
    overall = report.get("as_is", {}).get("source_holdout", {}).get("overall")
    if overall:
        out["source_holdout"] = rounded(overall)
    return out


# ------------------------------------------------------------------------------------------------
# 5. Training
# ------------------------------------------------------------------------------------------------


def train_faceswap(settings: Settings, out: Path, options: FaceSwapOptions = FaceSwapOptions(), *,
                   cache_dir: Path, recipe: Optional[dict] = None, progress: ProgressCallback = no_progress,
                   cancel: Optional[CancelToken] = None) -> Path:
    from .. import backbones, mtcnn
    from ..checkpoints import save_detector
    from ..registry import create_detector
    from .universal import install_probe

    detector = create_detector(ARCHITECTURE)
    E, no_face = embed_faces(detector, settings, options, cache_dir, progress, cancel)
    progress(0.92, "held-out evaluation")
    report = faceswap_report(E, options, cancel)
    install_probe(detector, E, options.C)
    detector.card["temperature"] = report["temperature"]
    as_is = E.view == 0
    counts = {family: int((as_is & (E.family == family)).sum()) for family in ("camera", SBI_FAMILY, SWAP_FAMILY)}
    trained_on = {
        "summary": (f"face crops (MTCNN box + {FACE_MARGIN:.0%} margin) of {counts['camera']} real faces, "
                    f"{counts[SBI_FAMILY]} self-blended fakes of them (SBI) and {counts[SWAP_FAMILY]} face swaps "
                    f"from {len(np.unique(E.source))} sources ({', '.join(options.sources)} and scikit-image's "
                    f"astronaut), each also seen in {options.views - 1} processed view(s); a linear probe on "
                    f"frozen CLIP ViT-B/16 embeddings"),
        "sources": sorted({str(s) for s in E.source}), "views": options.views, "crops": int(as_is.sum()),
        "real": counts["camera"], "self_blends": counts[SBI_FAMILY], "face_swaps": counts[SWAP_FAMILY],
        "no_face_found": len(no_face), "options": {k: list(v) if isinstance(v, tuple) else v
                                                   for k, v in asdict(options).items()},
    }
    detector.card.update(
        backbone=backbones.SOURCES["clip_vit_b16"].card(),
        face_detector={"name": "mtcnn", "margin": FACE_MARGIN, "min_prob": options.min_face_prob,
                       "weights": [backbones.SOURCES[name].card() for name in mtcnn.BACKBONES]},
        heldout=report, licence="MIT (code); CLIP weights MIT (OpenAI); MTCNN weights MIT (facenet-pytorch)",
        intended_input="face crops: a face box grown by 30 % on every side (face mode)")
    return save_detector(detector, out, trained_on=trained_on, metrics=headline_metrics(report),
                         recipe=recipe or {}, name=SHIPPED_NAME, date=_dt.date.today().isoformat())
