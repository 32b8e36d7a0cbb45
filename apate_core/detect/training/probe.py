"""The linear probe on frozen embeddings: fitting, and evaluation that holds out whole groups.

Held-out evaluation (nothing reported here was fitted on the rows it scores):

* ``source``: leave one source repository out. A repository's real and generated files leave together,
  so a probe that memorised one repository's style, size or subject cannot score its own files.
* ``family``: leave one generator family out. The family's generated files leave, and so do the real
  files of every repository that holds any of them (their shared pipeline must not be a cue). The
  family's held-out scores are ranked against the real files' source-held-out scores.

Rows are weighted so each (source, label) group counts by the square root of its size: two large
repositories (SD 1.x art previews, StyleGAN3 faces) must not become the whole of "generated".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from ...progress import CancelToken, check_cancelled
from .embeddings import EmbeddingSet
from .evaluate import binary_metrics, expected_calibration_error, fit_temperature, sigmoid

DEFAULT_C = 0.5  # inverse L2 strength on the standardised class tokens; chosen on source-held-out folds


@dataclass(frozen=True)
class Probe:
    weight: np.ndarray  # (d,)
    bias: float

    def logits(self, X: np.ndarray) -> np.ndarray:
        return X @ self.weight + self.bias


def group_weights(E: EmbeddingSet) -> np.ndarray:
    keys = np.char.add(np.char.add(E.source.astype(str), ":"), E.y.astype(str))
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    w = 1.0 / np.sqrt(counts[inverse])
    for label in (0, 1):  # both classes carry the same total weight
        mask = E.y == label
        if mask.any():
            w[mask] *= 0.5 * len(w) / w[mask].sum()
    return w


def fit_probe(E: EmbeddingSet, C: float = DEFAULT_C) -> Probe:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=C, max_iter=2000)
    model.fit(E.X, E.y, sample_weight=group_weights(E))
    return Probe(weight=model.coef_[0].astype(np.float32), bias=float(model.intercept_[0]))


def _scored(E: EmbeddingSet, train: np.ndarray, test: np.ndarray, C: float, out: np.ndarray) -> None:
    if len(np.unique(E.y[train])) == 2 and test.any():
        out[test] = fit_probe(E.subset(train), C).logits(E.X[test])


SYNTHETIC_PREFIX = "apate/"  # sources Apate made itself (aligned re-syntheses): trained on, never scored


def synthetic(E: EmbeddingSet) -> np.ndarray:
    return np.char.startswith(E.source.astype(str), SYNTHETIC_PREFIX)


def source_holdout_logits(E: EmbeddingSet, C: float = DEFAULT_C,
                          cancel: Optional[CancelToken] = None) -> np.ndarray:
    out = np.full(len(E), np.nan)
    for source in np.unique(E.source[~synthetic(E)]):
        check_cancelled(cancel)
        test = E.source == source
        _scored(E, ~test, test, C, out)
    return out


def family_holdout_logits(E: EmbeddingSet, C: float = DEFAULT_C,
                          cancel: Optional[CancelToken] = None) -> np.ndarray:
    """Held-out logits of generated rows only (NaN for real rows)."""
    out = np.full(len(E), np.nan)
    for family in np.unique(E.family[(E.y == 1) & ~synthetic(E)]):
        check_cancelled(cancel)
        test = (E.y == 1) & (E.family == family) & ~synthetic(E)
        sources = np.unique(E.source[test])
        train = ~test & ~np.isin(E.source, sources)
        _scored(E, train, test, C, out)
    return out


def source_holdout_summary(X: np.ndarray, rows: Mapping[str, np.ndarray], families: Sequence[str],
                           C: float = DEFAULT_C) -> str:
    """One line for experiments on features X of ``rows`` (arrays y, family, source, path, view): with sources
    held out, ROC-AUC and TPR at 5 % FPR as is (view 0) and processed (view 1), then each named family's
    generated files against every real file, as is."""
    from sklearn.metrics import roc_auc_score

    E = EmbeddingSet(X=X, y=rows["y"], family=rows["family"], source=rows["source"], path=rows["path"],
                     view=rows["view"], steps=np.array(["-"] * len(X)))
    z = source_holdout_logits(E, C)
    out = []
    for view, name in ((0, "as is"), (1, "processed")):
        m = E.view == view
        out.append(f"{name}: ROC-AUC {roc_auc_score(E.y[m], z[m]):.3f}, TPR@5% {tpr_at_fpr(E.y[m], z[m]):.3f}")
    as_is = E.view == 0
    for family in families:
        m = as_is & ((E.y == 0) | (E.family == family))
        out.append(f"{family} {roc_auc_score(E.y[m], z[m]):.3f}")
    return "; ".join(out)


def tpr_at_fpr(y: np.ndarray, z: np.ndarray, fpr: float = 0.05) -> float:
    threshold = np.quantile(z[y == 0], 1.0 - fpr)
    return float((z[y == 1] > threshold).mean())


def metrics(y: np.ndarray, z: np.ndarray, temperature: float = 1.0, threshold: float = 0.5) -> dict[str, Any]:
    m = binary_metrics(y, z, threshold=threshold, temperature=temperature)
    scaled = sigmoid(z / temperature)
    return {"n_real": m["n_real"], "n_fake": m["n_fake"], "roc_auc": m["roc_auc"], "ap": m["average_precision"],
            "tpr_at_5pct_fpr": tpr_at_fpr(y, z), "flagged_fake": float((scaled[y == 1] >= threshold).mean()),
            "flagged_real": float((scaled[y == 0] >= threshold).mean()),
            "ece": expected_calibration_error(y, scaled)}


def family_table(E: EmbeddingSet, z_fake: np.ndarray, z_real: np.ndarray, temperature: float,
                 threshold: float, min_count: int = 1, groups: Optional[np.ndarray] = None) -> dict[str, dict[str, Any]]:
    """Per generator family (or per value of ``groups``, e.g. E.source): its held-out fake logits ranked
    against all real held-out logits."""
    groups = E.family if groups is None else groups
    real = E.y == 0
    table = {}
    for group in np.unique(groups[E.y == 1]):
        fake = (E.y == 1) & (groups == group) & ~np.isnan(z_fake)
        if fake.sum() < min_count:
            continue
        y = np.r_[np.zeros(real.sum(), int), np.ones(fake.sum(), int)]
        table[str(group)] = metrics(y, np.r_[z_real[real], z_fake[fake]], temperature, threshold)
    return table


def operating_shift(y: np.ndarray, logits: np.ndarray, temperature: float, threshold: float,
                    target_fpr: float) -> float:
    """Logit offset (<= 0) that puts ``target_fpr`` of the real rows at or above ``threshold``: a verdict
    of "fake" should rarely fall on a real photo, even at the cost of missing generated ones."""
    real = logits[(y == 0) & ~np.isnan(logits)]
    needed = temperature * float(np.log(threshold / (1.0 - threshold))) - float(np.quantile(real, 1.0 - target_fpr))
    return min(0.0, needed)


def holdout_report(E: EmbeddingSet, C: float = DEFAULT_C, threshold: float = 0.6, target_fpr: Optional[float] = 0.05,
                   cancel: Optional[CancelToken] = None) -> dict[str, Any]:
    """Both held-out schemes on ``E``. The temperature is fitted on the source-held-out logits; then, with
    ``target_fpr``, the logits are shifted so that share of the real files (as they are) reads "fake" at
    ``threshold`` (the card's bias_shift, applied to the shipped head). Figures are after both."""
    by_source = source_holdout_logits(E, C, cancel)
    by_family = family_holdout_logits(E, C, cancel)
    ok = ~np.isnan(by_source)
    temperature = fit_temperature(E.y[ok], by_source[ok])  # scored rows only: synthetic ones stay NaN
    as_is = (E.view == 0) & ~synthetic(E)
    shift = operating_shift(E.y[as_is], by_source[as_is], temperature, threshold, target_fpr) if target_fpr else 0.0
    by_source, by_family = by_source + shift, by_family + shift
    report: dict[str, Any] = {"C": C, "temperature": temperature, "threshold": threshold, "target_fpr": target_fpr,
                              "bias_shift": shift}
    scored = ~synthetic(E)
    for view_name, view_mask in (("as_is", (E.view == 0) & scored), ("processed", (E.view > 0) & scored)):
        if not view_mask.any():
            continue
        V = E.subset(view_mask)
        zs, zf = by_source[view_mask], by_family[view_mask]
        good = ~np.isnan(zs)
        z_family_all = np.where(V.y == 1, zf, zs)
        good_f = ~np.isnan(z_family_all)
        report[view_name] = {
            "source_holdout": {"overall": metrics(V.y[good], zs[good], temperature, threshold),
                               "families": family_table(V, zs, zs, temperature, threshold),
                               "sources": family_table(V, zs, zs, temperature, threshold, groups=V.source)},
            "family_holdout": {"overall": metrics(V.y[good_f], z_family_all[good_f], temperature, threshold),
                               "families": family_table(V, zf, zs, temperature, threshold)},
        }
    return report
