"""The ``segkit`` command: ``segkit <command> [arguments]`` runs ``python -m <module>
[arguments]`` (both forms stay). Standard library only, so ``segkit --help`` is instant."""

from __future__ import annotations

import runpy
import sys

#: command -> (module it runs, what it does)
COMMANDS = {
    "train": ("segkit.train", "train a model (Hydra overrides: model=unet data=cityscapes ...)"),
    "eval": ("segkit.eval", "evaluate a checkpoint on a split: ckpt_path=... [data=...]"),
    "predict": ("segkit.predict", "predict images: ckpt_path=... input=... output=..."),
    "export": ("segkit.export", "export a network to ONNX or TorchScript: ckpt_path=..."),
    "sweep": ("segkit.sweep", "Optuna search with pruning: hparams_search=optuna [overrides]"),
    "compare": ("segkit.compare", "leaderboard and plots of finished runs: RUN_DIR ..."),
    "check": ("segkit.data.check", "read every sample of a dataset once: data=... data.root=..."),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: segkit <command> [arguments]", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "segkit <command> --help: the command's own help (Hydra's for train/eval/...)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if args[0] in ("-V", "--version"):
        from segkit import __version__

        print(f"segkit {__version__}")
        return 0
    if args[0] not in COMMANDS:
        print(f"segkit: unknown command {args[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = COMMANDS[args[0]][0]
    # As `python -m <module> args`: the module runs as __main__ with its own argv[0], so Hydra
    # names the job after it and Lightning's DDP launcher re-runs `python -m <module> args`.
    sys.argv = [module, *args[1:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
