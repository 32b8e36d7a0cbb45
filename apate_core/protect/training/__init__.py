"""Recipes that train Apate's shipped in-house Protect generators on synthetic edits of bundled photos.

    from apate_core.protect.training import train_family, write_model
    write_model(train_family("cyclegan", steps=700, seed=0), "assets/models/protect")
"""

from __future__ import annotations

from .data import CropSampler, heldout_crops, load_photo
from .edits import EDITS, LOCAL_EDITS, apply_edit, blend_edits, edit_image
from .train import RECIPES, Recipe, TrainResult, evaluate_heldout, get_recipe, model_card, train_family, write_model

__all__ = [
    "CropSampler", "EDITS", "LOCAL_EDITS", "RECIPES", "Recipe", "TrainResult", "apply_edit", "blend_edits",
    "edit_image", "evaluate_heldout", "get_recipe", "heldout_crops", "load_photo", "model_card", "train_family",
    "write_model",
]
