"""What the pages, reports and result.json say about a detector: its model card, summarised.

One line for what it was trained on and one for its headline metrics (cards vary: a string or nested
dicts), its limits, and the held-out figures per generator family where the card has them.
"""

from __future__ import annotations

from typing import Any, Optional

from .models import Detector


def model_summary(detector: Detector) -> dict[str, Any]:
    card = detector.model_card
    source = str(card.get("source") or "")
    untrained = "random initialisation" in source or (not card.get("trained_on") and not card.get("metrics"))
    return {"name": detector.name, "architecture": detector.architecture, "weights_sha256": detector.weights_sha256,
            "temperature": detector.temperature, "trained_on": card.get("trained_on"),
            "metrics": card.get("metrics") or {}, "source": source or None,
            "date": card.get("date"), "untrained": bool(untrained),
            "trained_on_summary": _summarise_trained_on(card.get("trained_on")),
            "metrics_summary": _summarise_metrics(card.get("metrics") or {}),
            "limits": card.get("limits"), "heldout_families": heldout_family_rows(card)}


def heldout_family_rows(card: dict[str, Any]) -> list[dict[str, Any]]:
    """Per generator family, the card's figures with that family held out (files as they are)."""
    families = (((card.get("heldout") or {}).get("as_is") or {}).get("family_holdout") or {}).get("families") or {}
    return [{"family": name, "generated files": int(m["n_fake"]), "ROC-AUC": round(m["roc_auc"], 3),
             "flagged": round(m["flagged_fake"], 3)} for name, m in sorted(families.items())]


HEADLINE_METRICS = ("roc_auc", "auc", "accuracy", "average_precision", "eer", "fpr", "tpr", "false_positive_rate")


def _summarise_trained_on(value: Any, limit: int = 240) -> Optional[str]:
    """One line for a card's trained_on, which may be a string or a nested dict."""
    if value in (None, "", {}, []):
        return None
    if isinstance(value, dict) and isinstance(value.get("summary"), str):
        text = value["summary"]  # a card's own one-line description wins over its raw details
    elif not isinstance(value, dict):
        text = str(value)
    else:
        parts = []
        for key, item in value.items():
            if isinstance(item, (str, int, float)):
                parts.append(f"{key}: {item}")
            elif isinstance(item, (list, tuple)) and item and all(isinstance(v, (str, int, float)) for v in item):
                parts.append(f"{key}: {', '.join(map(str, item[:6]))}{'…' if len(item) > 6 else ''}")
            elif isinstance(item, dict) and item and all(isinstance(v, (str, int, float)) for v in item.values()):
                parts.append(f"{key}: " + ", ".join(f"{k} {v}" for k, v in list(item.items())[:4]))
        text = "; ".join(parts) or ", ".join(map(str, value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _summarise_metrics(metrics: dict, limit: int = 6) -> Optional[str]:
    """Headline metrics (AUC, accuracy, ...) of a card, one level of sections deep, as one line."""
    found: list[str] = []

    def visit(prefix: str, node: dict) -> None:
        for key in HEADLINE_METRICS:
            if isinstance(node.get(key), (int, float)) and not isinstance(node.get(key), bool):
                found.append(f"{prefix}{key} {node[key]:.3f}")

    visit("", metrics)
    for section, node in metrics.items():
        if isinstance(node, dict):
            visit(f"{section} ", node)
    if not found:
        found = [f"{k} {v:.3f}" for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return ", ".join(found[:limit]) or None
