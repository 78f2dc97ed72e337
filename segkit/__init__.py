"""segkit: a PyTorch Lightning + Hydra research framework for image segmentation.

Entry points: ``python -m segkit.train``. Importing this package is cheap (no torch import),
so ``--help`` and config errors answer at once.
"""

__version__ = "0.1.0"
