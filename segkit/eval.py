"""`python -m segkit.eval ckpt_path=...`: evaluate a checkpoint on a dataset split.

The model is rebuilt from the checkpoint alone (no config files needed); the dataset is the
checkpoint's unless ``data=...`` picks another (``+data.root=...`` moves it). Prints the
metrics and writes ``metrics.json`` (val/miou, per-class IoU, accuracy, loss; mask/box AP
for instance models) to ``output_dir``. ``evaluator=cityscapes_official`` also writes the
predictions as labelId PNGs and runs cityscapesscripts' evaluator on them (``official/*``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from segkit.run.checkpoints import CheckpointError
from segkit.run.compose import CONF_DIR
from segkit.run.config_checks import ConfigError, check_required

EVALUATORS = ("segkit", "cityscapes_official")


def evaluate(cfg: DictConfig, chosen_data: str | None) -> dict[str, float]:
    """Metrics of the checkpoint on the split; written to ``<output_dir>/metrics.json``."""
    if cfg.split not in ("val", "test"):
        raise CheckpointError(f"split={cfg.split}: expected val or test")
    if cfg.evaluator not in EVALUATORS:
        raise CheckpointError(f"evaluator={cfg.evaluator}: expected one of {EVALUATORS}")
    from hydra.utils import instantiate

    from segkit.run.build import inference_trainer
    from segkit.run.from_checkpoint import default_output_dir, load_task_for_data
    from segkit.run.outputs import write_metrics
    from segkit.run.precision import inference_setting

    _, precision = inference_setting(cfg.device, cfg.precision)
    task, _, data_cfg = load_task_for_data(
        cfg.ckpt_path, cfg, chosen_data, precision, inference=cfg.inference
    )
    out = Path(cfg.output_dir or default_output_dir(cfg.ckpt_path, "eval", cfg.split))
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
    out.mkdir(parents=True, exist_ok=True)
    write_metrics(metrics, out / "metrics.json")
    width = max(len(k) for k in metrics)
    print("\n".join(f"{k:<{width}}  {v:.4f}" for k, v in sorted(metrics.items())))
    print(f"segkit: metrics written to {out / 'metrics.json'}")
    return metrics


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="eval")
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    try:
        check_required(cfg, "ckpt_path")
        evaluate(cfg, HydraConfig.get().runtime.choices.get("data"))
    except (ConfigError, CheckpointError, FileNotFoundError, ImportError) as err:
        print(f"segkit: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
