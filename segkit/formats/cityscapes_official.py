"""The official Cityscapes pixel-level evaluation (``cityscapesscripts``) of segkit predictions.

Predictions are written as ``<city>_<seq>_<frame>_pred_labelIds.png`` (trainIds mapped back to
official labelIds), then `evalPixelLevelSemanticLabeling.evaluateImgLists` compares them with
``gtFine/<split>/*/*_gtFine_labelIds.png``.
"""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
from PIL import Image

from segkit.data.cityscapes_labels import TRAIN_LABELS


def train_id_to_label_id() -> np.ndarray:
    """256-entry lookup trainId -> labelId (0, "unlabeled", for 255 and unused values)."""
    lut = np.zeros(256, dtype=np.uint8)
    for label in TRAIN_LABELS:
        lut[label.train_id] = label.id
    return lut


class LabelIdWriter:
    """Writes predicted trainId maps [H,W] as official labelId PNGs into `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.lut = train_id_to_label_id()

    def write(self, name: str, train_ids: np.ndarray) -> Path:
        path = self.directory / f"{name}_pred_labelIds.png"
        Image.fromarray(self.lut[train_ids.astype(np.uint8)]).save(path)
        return path


def _numpy_with_in1d():
    """numpy as cityscapesscripts 2.3 expects it: it calls ``np.in1d``, removed in NumPy 2.4.

    Given to that module only (its ``np`` name), so numpy itself is left untouched."""

    def in1d(values, test_values, invert=False):
        return np.isin(np.ravel(values), test_values, invert=invert)

    proxy = types.ModuleType("numpy_with_in1d")
    proxy.__dict__.update({k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
    proxy.in1d = getattr(np, "in1d", in1d)
    return proxy


def evaluate(prediction_dir: Path, root: Path, split: str, names: list[str]) -> dict:
    """The official evaluator on the predictions of `names` against ``root/gtFine/<split>``.

    Returns ``{"miou": averageScoreClasses, "iou": {class: IoU}}`` over the 19 classes."""
    try:
        from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official
    except ImportError as err:
        raise ImportError(
            "evaluator=cityscapes_official needs cityscapesscripts: "
            "pip install 'segkit[cityscapes]'"
        ) from err

    official.np = _numpy_with_in1d()
    args = official.args
    args.quiet, args.JSONOutput = True, False  # instance-level scores stay on, as official
    args.colorized, args.bold, args.nocol = False, "", ""
    ground_truth = []
    predictions = []
    for name in sorted(names):
        city = name.split("_", 1)[0]
        gt = Path(root) / "gtFine" / split / city / f"{name}_gtFine_labelIds.png"
        if not gt.is_file():
            raise FileNotFoundError(f"{gt}: ground truth for the official evaluation is missing")
        ground_truth.append(str(gt))
        predictions.append(str(Path(prediction_dir) / f"{name}_pred_labelIds.png"))
    results = official.evaluateImgLists(predictions, ground_truth, args)
    return {"miou": results["averageScoreClasses"], "iou": results["classScores"]}
