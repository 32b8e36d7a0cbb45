"""``apate detect FILE... [--fps F] [--model NAME|PATH] [--cam METHOD|none] [--faces] [--out DIR] [--json]``.

Writes result.json, heatmap PNGs and report.html per input under --out (default
``./apate-results/<input stem>/``); several inputs also get a combined summary.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..settings import load_settings
from ._output import band_arg, print_json

DEFAULT_OUT = Path("apate-results")


class _Bar:
    """A tqdm bar on stderr fed by an engine progress callback (fractions in [0, 1])."""

    def __init__(self, label: str, enabled: bool):
        from tqdm import tqdm

        self.bar = tqdm(total=1000, desc=label, file=sys.stderr, disable=not enabled, leave=False,
                        bar_format="{desc}: {percentage:3.0f}%|{bar}|{postfix}")

    def __call__(self, fraction: float, message: str) -> None:
        target = int(round(min(max(fraction, 0.0), 1.0) * 1000))
        if target > self.bar.n:
            self.bar.update(target - self.bar.n)
        self.bar.set_postfix_str(message[:60], refresh=False)

    def close(self) -> None:
        self.bar.close()


def _out_dir(base: Path | None, path: Path, used: set[Path]) -> Path:
    out = (base or DEFAULT_OUT) / path.stem
    n = 2
    while out in used:  # two inputs with one stem
        out = (base or DEFAULT_OUT) / f"{path.stem}-{n}"
        n += 1
    used.add(out)
    return out


def _human(result, out: Path) -> None:
    from ..detect.face_evidence import describe as describe_face_evidence
    from ..detect.verdict import describe_segment, display_label, explain

    data = result.data
    agg = data["aggregates"]
    extra = f" (max {agg['max']:.3f}, top-{agg['top_k']} mean {agg['top_k_mean']:.3f})" if agg["count"] > 1 else ""
    score = "n/a" if data["score"] is None else f"{data['score']:.3f}"
    stored = " [from the result store]" if result.from_store else ""
    print(f"{data['input']['name']}: {display_label(data['label'])} · P(fake) {score}{extra}{stored}")
    print(f"  {explain(data['verdict'])}")
    for segment in data["verdict"]["segments"]:
        print(f"  generated segment: {describe_segment(segment)}")
    faces = describe_face_evidence(data.get("face_evidence"))
    if faces:
        print(f"  {faces}")
    for note in data["notes"]:
        print(f"  note: {note}")
    print(f"  written: {out}")


def run(args: argparse.Namespace) -> int:
    from ..errors import InputRefused
    from ..media.intake import existing_file, intake_file

    settings = load_settings()
    paths = [existing_file(p, "paths to video or image files") for p in args.files]  # before anything heavy
    if len(paths) > settings.max_batch:
        raise InputRefused(f"{len(paths)} files in one job", limit=f"{settings.max_batch} (APATE_MAX_BATCH)")
    medias = [intake_file(path, settings) for path in paths]  # refuse bad content before loading a model

    from ..detect.pipeline import DetectParams, analyse_media, default_detector_name, load_detector, summarise_batch
    from ..detect.report import write_result_dir
    from ..detect.verdict import display_label
    from ..store import open_store

    cam = None if args.cam.lower() == "none" else args.cam
    params = DetectParams(fps=args.fps or settings.sample_fps, cam=cam, heatmaps=args.heatmaps, top_k=args.top_k,
                          faces=args.faces, face_evidence=not args.no_face_check, band=(args.band[0], args.band[1]))
    detector = load_detector(args.model or default_detector_name(), settings)
    show = not args.quiet
    results, used = [], set()
    with open_store(settings) as store:
        for path, media in zip(paths, medias):
            bar = _Bar(path.name, show)
            try:
                result = analyse_media(media, detector, params, store=store, progress=bar, settings=settings,
                                       normalise=args.normalise, source=str(path))
            finally:
                bar.close()
            out = _out_dir(args.out, path, used)
            write_result_dir(result, out, html_report=not args.no_report)
            result.data["output_dir"] = str(out.resolve())
            results.append(result)
            if not args.json:
                _human(result, out)
    if args.json:
        if len(results) == 1:
            print_json(results[0].data)
        else:
            print_json({"summary": summarise_batch(results, band=params.band), "results": [r.data for r in results]})
    elif len(results) > 1:
        summary = summarise_batch(results, band=params.band)
        counts = ", ".join(f"{display_label(k)} {v}" for k, v in summary["labels"].items() if v)
        print(f"summary: {summary['analysed']} inputs ({counts}), "
              f"most suspicious {summary['most_suspicious']} ({summary['max_score']:.3f})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("detect", help="score videos or images for AI generation, with heatmaps",
                            description="Score videos or images: P(fake) per frame, a verdict (real, uncertain, "
                                        "fake, generated segments or declared generated) and heatmaps.")
    parser.add_argument("files", metavar="FILE", nargs="+")
    parser.add_argument("--fps", type=float, default=None, help="frames sampled per second (default APATE_SAMPLE_FPS)")
    parser.add_argument("--model", default=None, metavar="NAME|PATH",
                        help="registered detector or checkpoint path (default: Apate's shipped model when "
                             "installed, else an untrained resnet18)")
    parser.add_argument("--cam", default="gradcam", metavar="METHOD|none", help="heatmap method, or none")
    parser.add_argument("--heatmaps", choices=("top_k", "all"), default="top_k",
                        help="heatmaps for the top-k frames only (default) or for every frame")
    parser.add_argument("--top-k", type=int, default=8, help="how many most suspicious frames to keep (default 8)")
    parser.add_argument("--faces", action="store_true", help="score face crops (per face, per frame)")
    parser.add_argument("--no-face-check", action="store_true",
                        help="skip the face-swap check (every sampled frame searched for faces by default)")
    parser.add_argument("--band", type=band_arg, default=(0.4, 0.6), metavar="LOW,HIGH",
                        help="uncertain band: real <= LOW, fake >= HIGH (default 0.4,0.6)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default ./apate-results/<stem>/)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--normalise", action="store_true", help="also keep a browser-playable H.264 copy")
    parser.add_argument("--no-report", action="store_true", help="skip report.html")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)
