"""Adversarial protections against image-translation generators."""

from __future__ import annotations

from .base import Attack, AttackConfig, AttackResult
from .methods import FGSM, IFGSM, PGD, FGSMConfig, IFGSMConfig, PGDConfig
from .registry import create_attack, get_attack_class, list_attacks, register_attack

__all__ = ["Attack", "AttackConfig", "AttackResult", "FGSM", "FGSMConfig", "IFGSM", "IFGSMConfig", "PGD",
           "PGDConfig", "create_attack", "get_attack_class", "list_attacks", "register_attack"]
