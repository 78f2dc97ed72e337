"""`python -m segkit.eval ckpt_path=...`: evaluate a checkpoint on a dataset split.

The model is rebuilt from the checkpoint alone (no config files needed); the dataset is the
checkpoint's unless ``data=...`` picks another (``+data.root=...`` moves it). Prints the
metrics and writes, to its own folder ``<run dir>/eval/<split>/<checkpoint>-<inference>/``
(``-2``, ``-3``... when that exists: no evaluation overwrites another) or to ``output_dir``:
``metrics.json`` (val/miou, aAcc, mAcc, per-class IoU and accuracy, loss; mask/box AP for
instance models), ``per_class.csv`` (semantic models) and ``evaluation.json`` (what was
evaluated: the checkpoint's path and SHA-256, the split, the inference options, the data and
the provenance). ``evaluator=cityscapes_official`` also writes the predictions as labelId
PNGs and runs cityscapesscripts' evaluator on them (``official/*``).
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from segkit.run.checkpoints import CheckpointError
from segkit.run.compose import CONF_DIR
from segkit.run.config_checks import ConfigError, check_required
from segkit.run.group_choices import exit_on_unknown_choice
from segkit.run.quiet import quiet_third_parties

EVALUATORS = ("segkit", "cityscapes_official")


def evaluate(
    cfg: DictConfig, chosen_data: str | None, inference_name: str = "whole"
) -> dict[str, float]:
    """Metrics of the checkpoint on the split, written with what produced them
    (`segkit.run.evaluation_outputs`) to the evaluation's own folder; `inference_name` is
    the ``inference=`` choice that names it."""
    if cfg.split not in ("val", "test"):
        raise CheckpointError(f"split={cfg.split}: expected val or test")
    if cfg.evaluator not in EVALUATORS:
        raise CheckpointError(f"evaluator={cfg.evaluator}: expected one of {EVALUATORS}")
    from hydra.utils import instantiate

    from segkit.run.build import inference_trainer
    from segkit.run.evaluation_outputs import evaluation_dir, write_evaluation
    from segkit.run.from_checkpoint import load_task_for_data
    from segkit.run.precision import inference_setting

    device, precision = inference_setting(cfg.device, cfg.precision)
    task, _, data_cfg = load_task_for_data(
        cfg.ckpt_path, cfg, chosen_data, precision, inference=cfg.inference
    )
    out = evaluation_dir(cfg.ckpt_path, cfg.split, inference_name, cfg.output_dir)
    callbacks = []
    if cfg.evaluator == "cityscapes_official":
        if not str(data_cfg.get("_target_", "")).endswith("CityscapesDataModule"):
            raise CheckpointError(
                "evaluator=cityscapes_official needs Cityscapes data (data=cityscapes)"
            )
        from segkit.callbacks.cityscapes_export import CityscapesOfficialExport

        callbacks.append(CityscapesOfficialExport(out / "pred_labelIds"))
    datamodule = instantiate(data_cfg, _convert_="all")
    trainer = inference_trainer(cfg.device, precision, out)
    trainer.callbacks.extend(callbacks)
    run = trainer.validate if cfg.split == "val" else trainer.test
    metrics: dict[str, float] = {}
    for results in run(task, datamodule=datamodule, verbose=False):
        metrics.update({k: float(v) for k, v in results.items()})
    for callback in callbacks:
        metrics.update(callback.evaluate(data_cfg.root, cfg.split))
    write_evaluation(metrics, out, cfg, data_cfg, inference_name, device, precision)
    width = max(len(k) for k in metrics)
    print("\n".join(f"{k:<{width}}  {v:.4f}" for k, v in sorted(metrics.items())))
    print(f"segkit: metrics written to {out / 'metrics.json'} (evaluation.json: what was run)")
    return metrics


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="eval")
def main(cfg: DictConfig) -> None:
    quiet_third_parties(bool(cfg.get("verbose", False)))
    from hydra.core.hydra_config import HydraConfig

    try:
        check_required(cfg, "ckpt_path")
        choices = HydraConfig.get().runtime.choices
        evaluate(cfg, choices.get("data"), choices.get("inference") or "whole")
    except (ConfigError, CheckpointError, FileNotFoundError, ImportError) as err:
        print(f"segkit: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    exit_on_unknown_choice(sys.argv[1:], CONF_DIR)  # model=unett: one line, closest names
    main()
