"""The confusion matrix of a run as numbers and as a figure (W&B panels, run-dir pictures)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def scores_per_class(confusion: torch.Tensor) -> np.ndarray:
    """IoU per class [C] from a confusion matrix (NaN for a class absent from both)."""
    from segkit.metrics import scores_from_confusion

    return scores_from_confusion(confusion)["iou"].numpy()


def confusion_figure(confusion: np.ndarray, names: Sequence[str]):
    """A matplotlib figure of the row-normalised confusion matrix (rows: ground truth)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = confusion.sum(1, keepdims=True)
    share = np.divide(confusion, rows, out=np.zeros(confusion.shape), where=rows > 0)
    size = max(4.0, 0.35 * len(names) + 2)
    figure, axes = plt.subplots(figsize=(size, size))
    shown = axes.imshow(share, vmin=0, vmax=1, cmap="Blues")
    axes.set_xticks(range(len(names)), names, rotation=90)
    axes.set_yticks(range(len(names)), names)
    axes.set_xlabel("prediction")
    axes.set_ylabel("ground truth")
    if len(names) <= 20:  # numbers stay readable
        for (row, col), value in np.ndenumerate(share):
            colour = "white" if value > 0.5 else "black"
            axes.text(col, row, f"{value:.2f}", ha="center", va="center", color=colour, size=7)
    figure.colorbar(shown, ax=axes, fraction=0.046)
    figure.tight_layout()
    return figure
