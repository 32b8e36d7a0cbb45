"""``apate evaluate DATA_DIR --model NAME|PATH [--json] [--out DIR]``: ROC-AUC, AP, accuracy, EER, ECE, ROC PNG.

DATA_DIR holds real/ and fake/ images (jpeg, png, webp) or videos (frames at --fps, averaged per video).
With --real-only, DATA_DIR is a folder of real media only and the false-positive rate is reported.

``apate evaluate --source NAME --model NAME|PATH``: a fixed model on a registered data source
(detect-data, testdata-generated), overall and per generator family: ROC-AUC, AP, TPR at 5 % FPR,
share flagged, ECE. ``apate evaluate --source NAME --holdout``: the default detector's RECIPE with whole
source repositories and whole generator families held out (the probe is refitted per fold).
"""

from __future__ import annotations

import argparse
import sys

from ._output import print_json


def _load(name: str):
    from ..detect.pipeline import load_detector
    from ..errors import InputRefused
    from ..settings import load_settings

    try:
        return load_detector(name, load_settings())
    except InputRefused:
        raise
    except (OSError, ValueError) as exc:
        raise InputRefused(f"Cannot load model {name!r}: {exc}") from exc


def run(args: argparse.Namespace) -> int:
    import torch

    from ..detect.training import evaluate as ev
    from ..errors import InputRefused

    torch.set_num_threads(max(1, args.threads))  # small convolutions: 1 thread beats 2 on a shared CPU
    if args.source:
        return _run_source(args)
    if not args.data_dir:
        raise InputRefused("Nothing to evaluate", accepted="DATA_DIR or --source NAME")
    if not args.model:
        raise InputRefused("--model NAME|PATH is needed with DATA_DIR")
    if args.fps <= 0:
        raise InputRefused(f"--fps must be positive, got {args.fps}")
    if args.real_only:
        from pathlib import Path

        folder = Path(args.data_dir)
        folder = folder / "real" if (folder / "real").is_dir() else folder
        detector = _load(args.model)
        report = ev.real_only_report(detector, folder, fps=args.fps, temperature=args.temperature)
        report["model"] = detector.name
        if args.json:
            print_json(report)
        else:
            print(f"{detector.name} on {report['n_real']} real files in {folder}: false-positive rate "
                  f"{report['false_positive_rate']:.3f} (mean P(fake) {report['mean_p_fake']:.3f})")
        return 0
    ev.collect_labelled(args.data_dir)  # refuse a bad DATA_DIR before loading a model
    detector = _load(args.model)
    report = ev.evaluate_detector(detector, args.data_dir, out_dir=args.out, fps=args.fps,
                                  temperature=args.temperature,
                                  progress=(lambda f, m: None) if args.json else
                                  (lambda f, m: print(f"\r{m}", end="", file=sys.stderr, flush=True)))
    if args.json:
        print_json(report.to_dict(with_files=args.files))
        return 0
    print(file=sys.stderr)
    m = report.metrics
    print(f"{detector.name} on {args.data_dir}: {m['n_real']} real, {m['n_fake']} fake")
    print(f"  ROC-AUC   {m['roc_auc']:.4f}")
    print(f"  AP        {m['average_precision']:.4f}")
    print(f"  accuracy  {m['accuracy']:.4f} at P(fake) >= {m['threshold']} (TPR {m['tpr']:.3f}, FPR {m['fpr']:.3f})")
    print(f"  EER       {m['eer']:.4f}")
    print(f"  ECE       {m['ece']:.4f} (15 bins); after temperature scaling (T={m['temperature']:.3f}, "
          f"{m['temperature_source']}): {m['ece_temperature_scaled']:.4f}")
    if report.roc_png:
        print(f"  ROC curve {report.roc_png}")
    return 0


def _run_source(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..detect.training import universal
    from ..errors import InputRefused
    from ..settings import load_settings

    settings = load_settings()
    cache = Path(args.cache) if args.cache else settings.cache_path / "embeddings"
    progress = (lambda f, m: None) if args.json else (lambda f, m: print(f"\r{m}", end="", file=sys.stderr, flush=True))
    if args.holdout:
        report = universal.holdout_source(settings, args.source, cache_dir=cache, progress=progress)
    elif args.model:
        report = universal.evaluate_source(_load(args.model), settings, args.source, cache_dir=cache,
                                           progress=progress)
    else:
        raise InputRefused("--source needs --model NAME|PATH or --holdout")
    if args.json:
        if not args.files:
            report.pop("files", None)
        print_json(report)
        return 0
    print(file=sys.stderr)
    for title, table in universal.report_tables(report):
        print(f"\n{title}\n" + table)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("evaluate", help="measure a detector on DATA_DIR/real and DATA_DIR/fake, or on a "
                                             "data source with whole sources and families held out")
    parser.add_argument("data_dir", metavar="DATA_DIR", nargs="?")
    parser.add_argument("--model", metavar="NAME|PATH", help="registered detector or checkpoint path")
    parser.add_argument("--source", metavar="NAME", help="a registered data source (detect-data, testdata-generated)")
    parser.add_argument("--holdout", action="store_true",
                        help="with --source: evaluate the default detector's recipe with whole source "
                             "repositories and generator families held out")
    parser.add_argument("--cache", default=None, metavar="DIR", help="embedding cache (default <cache dir>/embeddings)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--out", default=None, metavar="DIR", help="write roc.png here")
    parser.add_argument("--fps", type=float, default=1.0, help="frames per second sampled from videos (default 1)")
    parser.add_argument("--temperature", type=float, default=None,
                        help="temperature for the calibrated ECE (default: the model card's, else cross-fitted)")
    parser.add_argument("--real-only", action="store_true", help="DATA_DIR holds real media only: report the FPR")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--files", action="store_true", help="with --json: include per-file scores")
    parser.set_defaults(handler=run)
