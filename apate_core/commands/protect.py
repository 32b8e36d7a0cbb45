"""``apate protect IMG... [--target identity|generator]``: cloak faces against face recognition, or disrupt an
image-translation generator (``--model stargan``).

``--eps`` and ``--step`` are on the [-1, 1] scale, like the reference code (0.05 = 6.4/255). The protected files
keep the input's size; the ε bound holds exactly in the saved 8-bit PNG.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..settings import load_settings
from ._output import print_json

FAMILIES = ("stargan", "ganimation", "pix2pixhd", "cyclegan")


def _choice(args, settings):
    from ..errors import InputRefused
    from ..protect.job import GeneratorChoice, available_generators

    if args.weights:
        path = Path(args.weights).expanduser()
        if not path.is_file():
            raise InputRefused(f"Weights file {args.weights} does not exist",
                               accepted="a generator checkpoint (.pth/.ckpt/.pt/.safetensors)")
        return GeneratorChoice(args.model, f"{args.model}: {path.name}", path, {}, "checkpoint")
    choice = available_generators(settings, args.model)[0]
    if choice.demo:
        print(f"warning: no {args.model} weights in assets/models/protect or {settings.models_path}/{args.model}; "
              "using random weights (demo only — not a real generator); pass --weights PATH", file=sys.stderr)
    return choice


def _human(result) -> None:
    print(f"generator: {result.generator.label}; model input {result.model_size[1]}x{result.model_size[0]}; "
          f"{result.params.attack} eps={result.params.epsilon:g} ({result.params.epsilon * 127.5:.2f}/255), "
          f"shaping {'on' if result.params.shaping else 'off'}")
    for image in result.images:
        m = image.metrics
        psnr = m["quality"]["psnr"]
        print(f"{image.name} -> {image.file_name}: "
              f"Linf {m['perturbation']['linf_8bit']:.0f}/255, L2 {m['perturbation']['l2']:.3f}, "
              f"SSIM {m['quality']['ssim']:.4f}, PSNR {psnr if psnr is None else round(psnr, 2)} dB, "
              f"disrupted {m['disrupted_fraction']:.0%}")
        for row in m["outputs"]:
            print(f"  {row['target']}: MSE {row['mse']:.4f} L1 {row['l1']:.4f} L2 {row['l2']:.2f}"
                  f"{'  disrupted' if row['disrupted'] else ''}")
        for row in m["robustness"]:
            print(f"  after {row['transform']}: disrupted {row['disrupted_fraction']:.0%}")


def _human_identity(result) -> None:
    print(f"target: identity ({result.to_dict()['recogniser']}); match threshold {result.to_dict()['match_threshold']}")
    for image in result.images:
        m = image.metrics
        if not image.faces:
            print(f"{image.name}: no face found, nothing to cloak (file unchanged); try --target generator")
            continue
        psnr = m["quality"]["psnr"]
        print(f"{image.name} -> {image.file_name}: {len(image.faces)} face(s), eps {m['epsilon_8bit']:.0f}/255, "
              f"SSIM {m['quality']['ssim']:.4f}, PSNR {psnr if psnr is None else round(psnr, 2)} dB")
        for cond, share in m["unmatched"].items():
            distances = ", ".join("not found" if c.distance is None else f"{c.distance:.3f}"
                                  for c in image.checks if c.condition == cond)
            print(f"  {cond}: {share:.0%} of faces no longer matched (distances {distances})")


def _identity_params(args):
    from ..protect.identity.job import CloakParams

    extra = {"iterations": args.iters} if args.iters is not None else {}
    return CloakParams(epsilon=args.eps, shaping=not args.no_shaping, output_format=args.format,
                       with_robustness=not args.no_robustness, **extra).validate()


def _generator_params(args):
    from ..protect.job import ProtectParams

    given = {k: v for k, v in (("epsilon", args.eps), ("step_size", args.step), ("iterations", args.iters))
             if v is not None}
    return ProtectParams(attack=args.attack, random_start=not args.no_random_start,
                         targets=tuple(args.targets) if args.targets else None, robust=args.robust,
                         output_format=args.format, with_robustness=not args.no_robustness,
                         shaping=not args.no_shaping, **given).validate()


def _target(args, images) -> str:
    """auto: identity cloaking when every photo shows a face and no generator option was given."""
    if args.target != "auto":
        return args.target
    if args.weights or args.targets or args.model:
        return "generator"
    from ..protect.identity.align import find_faces

    faceless = [image.name for image in images if not find_faces(image.rgb)]
    if faceless:
        print(f"note: no face found in {', '.join(faceless)}: protecting against the generator "
              "(use --target identity to cloak the faces of the others)", file=sys.stderr)
        return "generator"
    return "identity"


def run(args: argparse.Namespace) -> int:
    from ..progress import CancelToken
    from ..protect.identity.job import run_identity_job
    from ..protect.job import load_image, run_protect_job
    from ..store import open_store

    settings = load_settings()
    images = [load_image(path, settings) for path in args.images]
    target = _target(args, images)
    params = _identity_params(args) if target == "identity" else _generator_params(args)
    choice = _choice(argparse.Namespace(**{**vars(args), "model": args.model or "stargan"}), settings) \
        if target == "generator" else None
    out_dir = Path(args.out).expanduser() if args.out else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)

    def progress(fraction: float, message: str) -> None:
        if not args.quiet:
            print(f"\r[{fraction:4.0%}] {message[:90]:<90}", end="", file=sys.stderr, flush=True)

    store = open_store(settings)
    try:
        if target == "identity":
            result = run_identity_job(images, params, settings, store=store, progress=progress,
                                      cancel=CancelToken())
        else:
            result = run_protect_job(images, choice, params, settings, store=store, progress=progress,
                                     cancel=CancelToken())
    finally:
        store.close()
        if not args.quiet:
            print(file=sys.stderr)
    written = []
    for image, source in zip(result.images, args.images):
        folder = out_dir or Path(source).expanduser().resolve().parent
        target_path = folder / image.file_name
        target_path.write_bytes(image.encoded)
        written.append(str(target_path))
    if args.json:
        data = result.to_dict()
        for entry, path in zip(data["images"], written):
            entry["output"] = path
        print_json(data)
    else:
        (_human_identity if target == "identity" else _human)(result)
        for path in written:
            print(f"wrote {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("protect", help="add an adversarial protection against a deepfake generator",
                            description=__doc__)
    parser.add_argument("images", nargs="+", metavar="IMG")
    parser.add_argument("--target", choices=("auto", "identity", "generator"), default="auto",
                        help="identity: cloak every face against face recognition; generator: disrupt an "
                             "image-translation model; auto (default): identity when every photo shows a face "
                             "and no generator option is given")
    parser.add_argument("--model", choices=FAMILIES, help="generator family (default stargan)")
    parser.add_argument("--weights", metavar="PATH", help="generator checkpoint (default: shipped or discovered)")
    parser.add_argument("--attack", choices=("fgsm", "ifgsm", "pgd"), default="pgd", help="default pgd")
    parser.add_argument("--eps", type=float, help="L-inf bound on the [-1, 1] scale (generator default 0.05; "
                                                   "identity default: the smallest of 4, 5, 6, 8 /255 that works)")
    parser.add_argument("--iters", type=int, help="iterations (generator default 10, identity 60)")
    parser.add_argument("--step", type=float, help="generator step size on the [-1, 1] scale (default 0.01)")
    parser.add_argument("--no-random-start", action="store_true", help="PGD without the uniform ±eps start")
    parser.add_argument("--targets", nargs="+", metavar="NAME",
                        help="target conditions (StarGAN attributes, GANimation expressions, or all)")
    parser.add_argument("--no-shaping", action="store_true",
                        help="spread the full ε everywhere as independent colour noise (no perceptual shaping)")
    parser.add_argument("--robust", action="store_true",
                        help="attack through random JPEG/resize/blur (expectation over transformations)")
    parser.add_argument("--no-robustness", action="store_true", help="skip the robustness table")
    parser.add_argument("--format", choices=("png", "jpeg", "webp"), default="png",
                        help="output format (default png; jpeg/webp re-compress and weaken the protection)")
    parser.add_argument("--out", metavar="DIR", help="output folder (default: next to each input)")
    parser.add_argument("--json", action="store_true", help="print metrics as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.set_defaults(handler=run)
