"""Quiet by default: the entry points drop third-party messages that say nothing about the run
(a deprecation inside Lightning, a product tip, a FLOPs column Lightning leaves at 0).
``verbose=true`` keeps every message."""

from __future__ import annotations

import logging
import warnings

#: Warnings segkit's users cannot act on: (category, message regex).
KNOWN_WARNINGS = (
    # Lightning 2.6 against torch 2.14's pytree API; harmless, fixed upstream in later Lightning.
    (FutureWarning, r".*LeafSpec.*"),
    # smp deprecates its timm- encoders; the packaged Lite0 weights load into either kind.
    (DeprecationWarning, r".*`timm-` encoders are deprecated.*"),
)
#: Log messages of Lightning's that are advertisements or about segkit's own choices.
KNOWN_LOG_LINES = (
    "litlogger",  # Lightning's tip to install its logging product
    "Trainer already configured with model summary callbacks",  # segkit's summary (below)
)


class _DropKnown(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(text in message for text in KNOWN_LOG_LINES)


def quiet_third_parties(verbose: bool = False) -> None:
    """Install the filters (once per process), unless `verbose`."""
    if verbose:
        return
    for category, pattern in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern, category=category)
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropKnown) for f in logger.filters):
            logger.addFilter(_DropKnown())


def model_summary_callback():
    """Lightning's model summary without its FLOPs column and total, which it fills with 0
    unless a module sets ``example_input_array``."""
    from lightning.pytorch.callbacks import ModelSummary
    from lightning.pytorch.utilities.model_summary.model_summary import _format_summary_table

    log = logging.getLogger("lightning.pytorch.callbacks.model_summary")

    class ParameterSummary(ModelSummary):
        @staticmethod
        def summarize(summary_data, total_parameters, trainable_parameters, model_size,
                      total_training_modes, total_flops=0, **summarize_kwargs):  # fmt: skip
            columns = [c for c in summary_data if c[0] != "FLOPs"]
            table = _format_summary_table(
                total_parameters, trainable_parameters, model_size, total_training_modes, 0,
                *columns,
            )  # fmt: skip
            log.info("\n" + "\n".join(line for line in table.splitlines() if "Flops" not in line))

    return ParameterSummary()
