"""Protect engine: generator families, adversarial attacks against them, and protection metrics.

    gen = load_generator("stargan", "models/stargan/200000-G.ckpt")
    attack = create_attack("pgd", epsilon=0.05, transferable=True)
    result = attack.run(gen, image_to_tensor(photo), default_targets(gen, 5))
    protected_u8 = quantize_protected(photo, result.protected, attack.config.epsilon)
"""

from __future__ import annotations

from .attacks import (Attack, AttackConfig, AttackResult, FGSMConfig, IFGSMConfig, PGDConfig, create_attack,
                      list_attacks)
from .checkpoints import (DiscoveredCheckpoint, config_from_state_dict, discover_checkpoints, load_generator,
                          read_checkpoint)
from .convert import fit_to_model, image_to_tensor, quantize_protected, tensor_to_image
from .generators import (AU_NAMES, STARGAN_ATTRIBUTES, GeneratorFamily, TranslationGenerator, create_generator,
                         default_targets, get_family, label_map_to_input, list_generators)

__all__ = [
    "AU_NAMES", "Attack", "AttackConfig", "AttackResult", "DiscoveredCheckpoint", "FGSMConfig", "GeneratorFamily",
    "IFGSMConfig", "PGDConfig", "STARGAN_ATTRIBUTES", "TranslationGenerator", "config_from_state_dict",
    "create_attack", "create_generator", "default_targets", "discover_checkpoints", "fit_to_model", "get_family",
    "image_to_tensor", "label_map_to_input", "list_attacks", "list_generators", "load_generator",
    "quantize_protected", "read_checkpoint", "tensor_to_image",
]
