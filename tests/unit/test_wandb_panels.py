"""The W&B panel callback: what it logs for a semantic task, with validation images of
different sizes, and the confusion matrix it reads from the metric."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch
from lightning.pytorch.plugins.precision import Precision

from segkit.callbacks.wandb_panels import WandbSegmentationPanels
from segkit.tracking.confusion import scores_per_class
from segkit.tracking.examples import display_rgb
from tests.unit.test_semantic_task import make_task


class RecordingLogger:
    def __init__(self) -> None:
        self.logged: list[tuple[dict, int]] = []

    def log_metrics(self, metrics, step):
        self.logged.append((metrics, step))


def sample(height: int, width: int, seed: int) -> dict:
    generator = torch.Generator().manual_seed(seed)
    return {
        "image": torch.randn(3, height, width, generator=generator),
        "mask": torch.randint(0, 3, (height, width), generator=generator),
        "name": f"img{seed}",
    }


def test_examples_panel_has_masks_for_images_of_any_size():
    task = make_task()
    task.train()  # the callback must hand the module back in the mode it found it
    val = [sample(64, 64, 0), sample(32, 96, 1), sample(64, 64, 2)]
    val[1]["mask"][0, :5] = 255  # ignored pixels keep their value in the panel
    trainer = SimpleNamespace(
        datamodule=SimpleNamespace(dataset=lambda split: val),
        precision_plugin=Precision(),
        global_step=7,
    )
    logger = RecordingLogger()
    WandbSegmentationPanels(num_images=2)._log_examples(logger, trainer, task)

    ((metrics, step),) = logger.logged
    assert step == 7 and task.training
    panel = metrics["val/examples"]
    assert [p._caption for p in panel] == ["img0", "img2"]  # evenly spaced: first and last
    task.eval()
    with torch.no_grad():
        expected = task(val[2]["image"][None])[0].argmax(0).numpy()
    masks = panel[1]._masks
    np.testing.assert_array_equal(masks["prediction"]._val["mask_data"], expected)
    np.testing.assert_array_equal(masks["ground_truth"]._val["mask_data"], val[2]["mask"].numpy())
    assert masks["ground_truth"]._val["class_labels"] == {0: "bg", 1: "a", 2: "b", 255: "ignore"}

    three = WandbSegmentationPanels(num_images=3)
    three._log_examples(logger, trainer, task)  # the 32x96 image too
    assert logger.logged[-1][0]["val/examples"][1]._masks["prediction"]._val["mask_data"].shape == (
        32,
        96,
    )


def test_display_undoes_the_normalisation():
    mean, std = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]
    rgb = display_rgb(torch.tensor([-2.0, 0.0, 2.0]).view(3, 1, 1).expand(3, 2, 2), mean, std)
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 2, 3)
    assert rgb[0, 0].tolist() == [0, 128, 255]  # clipped, mid grey, clipped
    grey = display_rgb(torch.zeros(1, 2, 2), mean, std)
    assert grey.shape == (2, 2, 3) and (grey == 128).all()


def test_scores_table_reads_the_summed_confusion_matrix():
    task = make_task()
    preds = torch.tensor([[[0, 1], [1, 2]]])
    target = torch.tensor([[[0, 1], [2, 2]]])
    task.val_scores.update(preds, target)
    task.val_scores.compute()
    confusion = task.val_scores.confusion
    assert confusion.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    np.testing.assert_allclose(scores_per_class(confusion), [1.0, 0.5, 0.5])


def test_mask_rcnn_panel_paints_instances_as_classes():
    from segkit.formats.instances import paint_instances
    from tests.unit.test_instance_task import square_target, task

    model = task()
    target = square_target(size=64)
    image = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))
    sample = {"image": image, "target": target, "name": "squares"}
    trainer = SimpleNamespace(
        datamodule=SimpleNamespace(dataset=lambda split: [sample]),
        precision_plugin=Precision(),
        global_step=3,
    )
    logger = RecordingLogger()
    WandbSegmentationPanels(num_images=4)._log_examples(logger, trainer, model)

    (panel,) = logger.logged[0][0]["val/examples"]
    masks = panel._masks
    truth = masks["ground_truth"]._val["mask_data"]
    np.testing.assert_array_equal(truth, paint_instances(target["masks"], target["labels"]).numpy())
    assert (truth == 2).sum() == target["masks"][0].sum()  # the square, as class 2
    assert masks["prediction"]._val["mask_data"].shape == (64, 64)
    assert masks["ground_truth"]._val["class_labels"][2] == model.class_names[2]
