"""The numbers the studies report: the share of the gap to full labels with its bootstrap
interval over seeds, and validation curves read from a run's CSV log."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
sys.path.insert(0, str(EXPERIMENTS))
sys.path.insert(0, str(EXPERIMENTS / "label_efficiency"))
from report import gap_share  # noqa: E402
from study_runs import bootstrap_interval, validation_curve  # noqa: E402


def runs_of(cells: dict[tuple[str, float], list[float]]) -> list[dict]:
    return [
        {"method": method, "fraction": fraction, "seed": seed, "val_miou": value}
        for (method, fraction), values in cells.items()
        for seed, value in enumerate(values)
    ]


def test_gap_share_is_a_ratio_of_means_with_a_seed_bootstrap_interval():
    runs = runs_of(
        {
            ("supervised", 0.125): [0.40, 0.42, 0.44],
            ("supervised", 1.0): [0.60, 0.60, 0.60],
            ("unimatch", 0.125): [0.52, 0.50, 0.50],
        }
    )
    share, per_seed, interval = gap_share(runs, "unimatch", 0.125, "val_miou")
    assert share == pytest.approx((0.50667 - 0.42) / (0.60 - 0.42), abs=1e-4)
    assert per_seed == pytest.approx([0.6, 8 / 18, 6 / 16])
    low, high = interval
    assert low <= share <= high and high - low > 0.05  # seeds disagree: a real interval
    assert low >= 0.375 - 1e-9 and high <= 0.6 + 1e-9  # within the extremes of the seeds
    assert gap_share(runs, "fixmatch", 0.125, "val_miou") is None  # no such cell
    assert bootstrap_interval(lambda idx: 1.0, 1) is None  # one seed: no interval


def test_validation_curve_reads_the_runs_validations_in_order(tmp_path):
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "metrics.csv").write_text(
        "epoch,step,train/loss,val/miou\n"
        "0,9,0.9,\n0,9,,0.31\n1,19,,0.42\n1,20,,0.42\n"  # the last: the closing re-validation
    )
    assert validation_curve(tmp_path, every=10, count=2) == [(10, 0.31), (20, 0.42)]
    with pytest.raises(ValueError, match=r"3 validations logged, expected 4"):
        validation_curve(tmp_path, every=10, count=4)


def test_a_longer_camvid_budget_runs_again_and_keeps_the_shorter_runs():
    from argparse import Namespace

    from study import cells, run_epochs

    args = Namespace(camvid="/data/CamVid", seeds=[0], fractions=[0.125, 1.0],
                     methods=["supervised"], epochs=80, full_epochs=60)  # fmt: skip
    shorter = {"method": "supervised", "fraction": 1.0, "seed": 0, "curve": [[27, 0.5], [30, 0.56]]}
    done = {("supervised", 0.125, 0, 80)} | {("supervised", 1.0, 0, *run_epochs(shorter, True))}
    assert done == {("supervised", 0.125, 0, 80), ("supervised", 1.0, 0, 30)}
    assert [c for c in cells(args) if c not in done] == [("supervised", 1.0, 0, 60)]
    assert run_epochs({**shorter, "epochs": 60}, True) == [60] and run_epochs(shorter, False) == []
