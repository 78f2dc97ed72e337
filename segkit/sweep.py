"""`segkit sweep hparams_search=optuna [overrides]`, also run by
``python -m segkit.train -m hparams_search=optuna [overrides]``: an Optuna search with pruning
(`segkit.run.sweep`). The study lives in ``<sweep dir>/optuna.db``: the same command with the
same ``hydra.sweep.dir=DIR`` continues a killed sweep; the best trial is written to
``<sweep dir>/optimization_results.yaml``. See docs/tracking.md.
"""

from __future__ import annotations

import sys

from segkit.run.sweep import main

if __name__ == "__main__":
    sys.exit(main())
