"""Generator families Apate protects against, each key-for-key compatible with its released checkpoints."""

from __future__ import annotations

from .base import TranslationGenerator
from .cyclegan import CycleGANConfig, CycleGANGenerator, infer_cyclegan_config
from .ganimation import (AU_NAMES, VIPERMU_ALIAS_PREFIXES, GANimationConfig, GANimationGenerator,
                         ganimation_targets, infer_ganimation_config)
from .pix2pixhd import (Pix2PixHDConfig, Pix2PixHDGenerator, infer_pix2pixhd_config, instance_edges,
                        label_map_to_input)
from .registry import (GeneratorFamily, create_generator, default_targets, get_family, list_generators,
                       register_generator)
from .stargan import STARGAN_ATTRIBUTES, StarGANConfig, StarGANGenerator, infer_stargan_config, stargan_targets


def _unconditional(names, n, original):
    return [None]


register_generator(GeneratorFamily(
    name="stargan", display_name="StarGAN", model_cls=StarGANGenerator, config_cls=StarGANConfig,
    infer_config=infer_stargan_config,
    make_targets=lambda names, n, original: stargan_targets(names, n, original),
    condition_names=STARGAN_ATTRIBUTES, condition_kind="binary attributes (hair colours one-hot)",
    native_size=(256, 256), checkpoint_files="models/stargan/*-G.ckpt (e.g. 200000-G.ckpt)",
    description="Facial attribute editing: hair colour, gender, age.",
    fixups=("fill_num_batches_tracked",), config_names=("conv_dim", "c_dim", "repeat_num"),
))
register_generator(GeneratorFamily(
    name="ganimation", display_name="GANimation", model_cls=GANimationGenerator, config_cls=GANimationConfig,
    infer_config=infer_ganimation_config,
    make_targets=lambda names, n, original: ganimation_targets(names, n),
    condition_names=AU_NAMES, condition_kind="action-unit intensities in [0, 1]",
    native_size=(128, 128),
    checkpoint_files="models/ganimation/*.pth|*.ckpt (net_epoch_<E>_id_G.pth or <iter>-<epoch>-G.ckpt)",
    description="Facial expression animation driven by action units; official and vipermu layouts.",
    fixups=("fill_num_batches_tracked", "strip_legacy_norm_stats"), alias_prefixes=VIPERMU_ALIAS_PREFIXES,
    config_names=("conv_dim", "c_dim", "repeat_num", "layout"),
))
register_generator(GeneratorFamily(
    name="pix2pixhd", display_name="pix2pixHD", model_cls=Pix2PixHDGenerator, config_cls=Pix2PixHDConfig,
    infer_config=infer_pix2pixhd_config, make_targets=_unconditional, condition_names=(),
    condition_kind="none (label map + instance edges in the released model)", native_size=(1024, 2048),
    checkpoint_files="models/pix2pixhd/latest_net_G.pth",
    description="High-resolution label-to-image synthesis (Cityscapes label2city release).",
    fixups=("strip_legacy_norm_stats",),
    config_names=("input_nc", "output_nc", "ngf", "netG", "n_downsample_global", "n_blocks_global",
                  "n_local_enhancers", "n_blocks_local"),
))
register_generator(GeneratorFamily(
    name="cyclegan", display_name="CycleGAN", model_cls=CycleGANGenerator, config_cls=CycleGANConfig,
    infer_config=infer_cyclegan_config, make_targets=_unconditional, condition_names=(),
    condition_kind="none", native_size=(256, 256),
    checkpoint_files="models/cyclegan/latest_net_G_A.pth (or latest_net_G.pth)",
    description="Unpaired image-to-image translation (ResNet-9 generator, e.g. horse2zebra).",
    fixups=("strip_legacy_norm_stats",), config_names=("input_nc", "output_nc", "ngf", "n_blocks"),
))

__all__ = [
    "AU_NAMES", "STARGAN_ATTRIBUTES", "CycleGANConfig", "CycleGANGenerator", "GANimationConfig",
    "GANimationGenerator", "GeneratorFamily", "Pix2PixHDConfig", "Pix2PixHDGenerator", "StarGANConfig",
    "StarGANGenerator", "TranslationGenerator", "create_generator", "default_targets", "get_family",
    "instance_edges", "label_map_to_input", "list_generators", "register_generator",
]
