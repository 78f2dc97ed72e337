"""`python -m segkit.compare RUN_DIR|SWEEP_DIR ...`: a leaderboard of finished runs, offline.

Reads what every segkit run leaves in its run dir (no W&B needed):
``.hydra/config.yaml`` (resolved config), ``.hydra/hydra.yaml`` (config group choices),
``csv/metrics.csv`` (per-epoch metrics) and ``metrics.json`` (final metrics of the best
checkpoint). Writes to ``--out``:

* ``leaderboard.md`` and ``leaderboard.csv``: one row per run, best first. Columns: the run,
  the config values that differ between the runs (a group choice such as ``model`` stands for
  all the keys of its group), the best ``--metric`` over the epochs, the final test score
  when there is one, the number of epochs, the median epoch time in seconds and (when runs
  have them) a link to each run's latest validation sample grid (``samples/epoch_NNN.png``);
* ``curves.png``: ``--metric`` per epoch for every run;
* ``per_class_iou.png``: per-class IoU (``val/iou/<class>`` of metrics.json) of the ``--top``
  runs.

The table is printed too. No torch import: it starts in about a second.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from segkit.tracking.leaderboard import (
    CompareError,
    find_run_dirs,
    leaderboard,
    markdown_table,
    read_run,
    write_outputs,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m segkit.compare",
        description="Leaderboard (Markdown, CSV) and plots of finished segkit runs.",
    )
    parser.add_argument("dirs", nargs="+", type=Path, help="run dirs, sweep dirs or outputs/")
    parser.add_argument(
        "--out",
        type=Path,
        help="where to write (default: <dir>/comparison for one sweep dir, else ./comparison)",
    )
    parser.add_argument("--metric", default="val/miou", help="the score to rank by")
    parser.add_argument("--mode", choices=("max", "min"), default="max")
    parser.add_argument("--top", type=int, default=3, help="runs in the per-class IoU plot")
    args = parser.parse_args(argv)
    try:
        paths = find_run_dirs(args.dirs)
        runs = [read_run(p, args.metric) for p in paths]
    except (CompareError, OSError, ValueError) as err:
        print(f"segkit.compare: {err}", file=sys.stderr)
        return 2
    single_sweep = len(args.dirs) == 1 and not (args.dirs[0] / ".hydra").is_dir()
    out = args.out or (args.dirs[0] / "comparison" if single_sweep else Path("comparison"))
    header, rows, ordered = leaderboard(runs, args.metric, args.mode)
    print(markdown_table(header, rows))
    for path in write_outputs(header, rows, ordered, args.metric, out, max(1, args.top)):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
