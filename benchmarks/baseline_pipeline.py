"""The baseline Apate is measured against: the pipeline as the original project describes it, rebuilt.

    upload --FFmpeg--> 720p H.264 --FFmpeg--> JPEG frames at ``fps`` in a temp folder
           --> for each JPEG, one by one: load, 224x224, ResNet-18 + Grad-CAM (pytorch-grad-cam,
               target layer ``layer4[-1]``), write a heatmap PNG

The two FFmpeg steps run the ``ffmpeg`` CLI when it is on PATH, else PyAV (FFmpeg's libraries) with the same
filters: ``scale=-2:720`` + libx264 (preset medium, CRF 23, FFmpeg's defaults) for the transcode, ``fps=F`` + JPEG
(quality about ``-q:v 2``) for the dump. The model is torchvision's ``resnet18(weights=None, num_classes=1)``:
random weights cost the same time as trained ones. It is built (and run once) before timing, as Apate's detector
is loaded before its runs; torch's thread count is the process's, as for Apate.

Usage (on its own; ``bench_detect.py`` runs it beside Apate on the same clip)::

    python benchmarks/baseline_pipeline.py CLIP [--fps 1]
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

HEIGHT, SIDE = 720, 224
X264 = {"preset": "medium", "crf": "23"}  # what `ffmpeg -c:v libx264` uses when given nothing else
JPEG_QUALITY = 95  # about ffmpeg's -q:v 2
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass
class BaselineTiming:
    transcode_s: float
    dump_s: float
    model_cam_s: float
    frames: int
    tool: str  # "ffmpeg CLI" or "PyAV"

    @property
    def total_s(self) -> float:
        return self.transcode_s + self.dump_s + self.model_cam_s

    def to_dict(self) -> dict:
        return {**asdict(self), "total_s": self.total_s}


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def _graph(stream, *filters: tuple[str, str]):
    import av

    graph = av.filter.Graph()
    nodes = [graph.add_buffer(template=stream)] + [graph.add(name, arg) for name, arg in filters]
    graph.link_nodes(*nodes, graph.add("buffersink"))
    graph.configure()
    return graph


def _filtered(path: Path, *filters: tuple[str, str]):
    """Decoded frames of ``path``'s video through an FFmpeg filter chain (flushed at the end), with its stream."""
    import av

    with av.open(str(path)) as src:
        stream = src.streams.video[0]
        stream.thread_type = "AUTO"
        graph = _graph(stream, *filters)
        for frame in [*src.decode(stream), None]:
            graph.vpush(frame)
            while True:
                try:
                    yield stream, graph.vpull()
                except (BlockingIOError, av.error.EOFError):
                    break


def transcode_720p(src: Path, dst: Path) -> None:
    """``ffmpeg -i SRC -vf scale=-2:720 -c:v libx264 -pix_fmt yuv420p DST`` (video only: the clip has no sound)."""
    if shutil.which("ffmpeg"):
        _ffmpeg("-i", str(src), "-vf", f"scale=-2:{HEIGHT}", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-an", str(dst))
        return
    import av

    with av.open(str(dst), "w") as out:
        video = None
        for stream, frame in _filtered(src, ("scale", f"-2:{HEIGHT}"), ("format", "yuv420p")):
            if video is None:
                video = out.add_stream("libx264", rate=stream.average_rate)
                video.width, video.height, video.pix_fmt = frame.width, frame.height, "yuv420p"
                video.time_base, video.options = stream.time_base, dict(X264)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))


def dump_jpegs(video: Path, folder: Path, fps: float) -> list[Path]:
    """``ffmpeg -i VIDEO -vf fps=F -q:v 2 FOLDER/%05d.jpg``."""
    if shutil.which("ffmpeg"):
        _ffmpeg("-i", str(video), "-vf", f"fps={fps:g}", "-q:v", "2", str(folder / "%05d.jpg"))
    else:
        for n, (_, frame) in enumerate(_filtered(video, ("fps", f"{fps:g}")), 1):
            frame.to_image().save(folder / f"{n:05d}.jpg", quality=JPEG_QUALITY)
    return sorted(folder.glob("*.jpg"))


class FrameByFrameCam:
    """ResNet-18 (one logit) + pytorch-grad-cam's GradCAM on ``layer4[-1]``, one 224x224 image per call."""

    def __init__(self) -> None:
        import torch
        from pytorch_grad_cam import GradCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
        from torchvision.models import resnet18

        torch.manual_seed(0)
        self.torch = torch
        self.model = resnet18(weights=None, num_classes=1).eval()
        self.cam = GradCAM(model=self.model, target_layers=[self.model.layer4[-1]])
        self.targets = [ClassifierOutputTarget(0)]
        self.mean = torch.tensor(MEAN).view(3, 1, 1)
        self.std = torch.tensor(STD).view(3, 1, 1)

    def __call__(self, jpeg: Path, heatmap_png: Path) -> float:
        """P(fake) of one JPEG (sigmoid of the logit); its Grad-CAM overlay goes to ``heatmap_png``."""
        import numpy as np
        from PIL import Image
        from pytorch_grad_cam.utils.image import show_cam_on_image

        with Image.open(jpeg) as image:
            rgb = np.asarray(image.convert("RGB").resize((SIDE, SIDE), Image.BILINEAR), dtype=np.float32) / 255.0
        x = ((self.torch.from_numpy(rgb).permute(2, 0, 1) - self.mean) / self.std)[None]
        grayscale = self.cam(input_tensor=x, targets=self.targets)[0]
        Image.fromarray(show_cam_on_image(rgb, grayscale, use_rgb=True)).save(heatmap_png)
        return float(self.torch.sigmoid(self.cam.outputs.detach())[0, 0])

    def warm_up(self, folder: Path) -> None:
        from PIL import Image

        Image.new("RGB", (SIDE, SIDE), (128, 96, 64)).save(folder / "warm.jpg")
        self(folder / "warm.jpg", folder / "warm.png")


def run_baseline(clip: Path, fps: float = 1.0, cam: FrameByFrameCam | None = None) -> BaselineTiming:
    """One timed pass of the whole baseline on ``clip``; everything it writes goes in a temp folder, removed after."""
    cam = cam or FrameByFrameCam()
    with tempfile.TemporaryDirectory(prefix="apate-baseline-") as tmp:
        work = Path(tmp)
        (work / "frames").mkdir()
        (work / "heatmaps").mkdir()
        started = time.perf_counter()
        transcode_720p(clip, work / "upload-720p.mp4")
        transcoded = time.perf_counter()
        jpegs = dump_jpegs(work / "upload-720p.mp4", work / "frames", fps)
        dumped = time.perf_counter()
        for jpeg in jpegs:
            cam(jpeg, work / "heatmaps" / f"{jpeg.stem}.png")
        done = time.perf_counter()
    return BaselineTiming(transcoded - started, dumped - transcoded, done - dumped, len(jpegs),
                          "ffmpeg CLI" if shutil.which("ffmpeg") else "PyAV")


def comparison_table(baseline: BaselineTiming, apate: dict[str, tuple[str, str, float, int, float]],
                     repeat: int) -> dict:
    """Print the baseline, its parts and each Apate run (label: (model, heatmaps mode, seconds, frames, goal for
    baseline / Apate)) as one table; return the figures for --json."""
    total = baseline.total_s
    print(f"\nbaseline (the original pipeline, FFmpeg steps by {baseline.tool}) vs Apate, same clip, best of {repeat}:")
    print(f"{'pipeline':<60}{'wall s':>8}{'frames':>8}{'frames/s':>10}{'baseline/this':>15}  goal")
    print(f"{'baseline: transcode + JPEG dump + ResNet-18 and Grad-CAM':<60}{total:>8.2f}{baseline.frames:>8d}"
          f"{baseline.frames / total:>10.2f}")
    for part, seconds in (("transcode to 720p H.264 (libx264)", baseline.transcode_s), ("JPEG dump", baseline.dump_s),
                          ("ResNet-18 + Grad-CAM + PNG, one JPEG at a time", baseline.model_cam_s)):
        print(f"{'  ' + part:<60}{seconds:>8.2f}")
    out = {**baseline.to_dict(), "apate": {}}
    for label, (name, mode, seconds, frames, goal) in apate.items():
        ratio = total / seconds
        row = f"Apate, {name}{' (default)' if label == 'default' else ''}, heatmaps " + (
            "for the top 8" if mode == "top_k" else "for every frame")
        print(f"{row:<60}{seconds:>8.2f}{frames:>8d}{frames / seconds:>10.2f}{ratio:>14.1f}x  >= {goal:g}x "
              f"{'ok' if ratio >= goal else 'UNDER'}")
        out["apate"][label] = {"model": name, "heatmaps": mode, "seconds": seconds, "frames": frames,
                               "baseline_ratio": ratio, "goal": goal}
    return out


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip", type=Path)
    parser.add_argument("--fps", type=float, default=1.0)
    args = parser.parse_args()
    cam = FrameByFrameCam()
    with tempfile.TemporaryDirectory() as tmp:
        cam.warm_up(Path(tmp))
    t = run_baseline(args.clip, args.fps, cam)
    print(f"baseline ({t.tool}): {t.total_s:.2f} s = transcode {t.transcode_s:.2f} s + JPEG dump {t.dump_s:.2f} s "
          f"+ model and Grad-CAM {t.model_cam_s:.2f} s ({t.frames} frames)")


if __name__ == "__main__":
    main()
