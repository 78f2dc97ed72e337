"""`make bench`: segkit against a hand-written PyTorch loop and against this machine's limit.

Each row runs in its own process, one after the other (nothing else should run meanwhile):
1. overhead: segkit's task and Trainer vs the hand-written loop, per model (overhead_row.py);
2. fast path: segkit's default precision and memory format vs plain fp32 NCHW
   (fastpath_row.py);
3. machine limit: training FLOP/s against the measured matmul peak (utilization_row.py);
4. data: loader images/s vs model images/s (loader_row.py);
5./6. startup times and the peak RSS of the default training run (startup_memory.py).

Every figure is the median of repetitions after warm-up, with min and max; ratios are taken
pair by pair in the same process. Writes results.md and results.json (keys
``overhead_ratio``, ``fastpath_speedup``, ``utilization_pct``, ``startup_s``, ``peak_rss_mb``,
``logging_pct``, then ``goals``, ``machine`` and every row in full under ``rows``).

    python experiments/throughput/bench.py            # about 25 minutes on 2 cores
    python experiments/throughput/bench.py --smoke    # one tiny model, one repetition (~1 min)
"""

from __future__ import annotations

import argparse
import json
import operator
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from startup_memory import bench_env  # noqa: E402  (beside this file)
from startup_memory import measure as startup_measure  # noqa: E402

#: Goals of the benchmark issue: key -> (comparison, threshold); a key over several models is
#: met when every model meets it.
GOALS = {
    "overhead_ratio": (">=", 0.97),
    "fastpath_speedup (unet_resnet18)": (">=", 2.0),
    "logging_pct": ("<", 3),
    "startup_s.help": ("<", 3),
    "startup_s.config_error": ("<", 3),
}
COMPARE = {">=": operator.ge, "<": operator.lt}

FULL = {
    "overhead": {
        "models": ["unet_resnet18", "unet_resnet34", "deeplabv3plus"],
        "args": ["--size", "64", "--batch", "16", "--warmup", "3", "--block", "10", "--reps", "5"],
    },
    "fastpath": {
        "models": ["unet_resnet18"],
        "args": [
            "--size",
            "256",
            "--batch",
            "8",
            "--block",
            "3",
            "--reps",
            "5",
            "--bf16-reps",
            "2",
            "--compile",
        ],
    },
    "utilization": ["--size", "64", "--batch", "16", "--reps", "5", "--bf16-reps", "2"],
    "loader": ["--images", "16", "--reps", "3"],
    "startup": {"reps": 3, "rss_runs": 3, "train": []},
}
SMOKE = {
    "overhead": {
        "models": ["unet_resnet18"],
        "args": ["--size", "32", "--batch", "2", "--warmup", "1", "--block", "2", "--reps", "1"],
    },
    "fastpath": {
        "models": ["unet_resnet18"],
        "args": ["--size", "32", "--batch", "2", "--block", "1", "--reps", "1", "--bf16-reps", "1"],
    },
    "utilization": [
        "--size",
        "32",
        "--batch",
        "2",
        "--reps",
        "1",
        "--bf16-reps",
        "1",
        "--matmul",
        "256",
    ],
    "loader": ["--images", "8", "--size", "128", "--reps", "1", "--batches", "3"],
    "startup": {
        "reps": 1,
        "rss_runs": 1,
        "train": [
            "data.train_size=32",
            "data.val_size=8",
            "data.test_size=8",
            "data.image_size=32",
            "trainer.max_steps=2",
            "trainer.max_epochs=1",
        ],
    },
}


def run_row(script: str, *args: str) -> dict:
    """Run `script` in a fresh process; its last stdout line is the row's JSON."""
    done = subprocess.run(
        [sys.executable, str(HERE / script), *args],
        capture_output=True,
        text=True,
        env=bench_env(),
    )
    if done.returncode:
        raise SystemExit(f"{script} {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    row = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{script} {' '.join(args)}: {json.dumps(row)}", flush=True)
    return row


def machine() -> dict:
    import torch

    return {
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
    }


def collect(plan: dict) -> dict:
    rows: dict = {}
    rows["overhead"] = {
        m: run_row("overhead_row.py", m, *plan["overhead"]["args"])
        for m in plan["overhead"]["models"]
    }
    rows["fastpath"] = {
        m: run_row("fastpath_row.py", m, *plan["fastpath"]["args"])
        for m in plan["fastpath"]["models"]
    }
    rows["utilization"] = run_row(
        "utilization_row.py", *plan["overhead"]["models"], *plan["utilization"]
    )
    rows["loader"] = run_row("loader_row.py", *plan["loader"])
    startup = plan["startup"]
    rows["startup_memory"] = startup_measure(startup["reps"], startup["rss_runs"], startup["train"])
    print(f"startup_memory: {json.dumps(rows['startup_memory'])}", flush=True)
    return rows


def summarise(rows: dict) -> dict:
    """The top-level keys other tools read, and the goals met or missed."""
    overhead = {m: r["overhead_ratio"]["median"] for m, r in rows["overhead"].items()}
    logging_pct = {m: r["logging_pct"]["median"] for m, r in rows["overhead"].items()}
    fastpath = {
        m: r["speedup_vs_fp32_nchw"]["default"]["median"] for m, r in rows["fastpath"].items()
    }
    startup = {k: v["median"] for k, v in rows["startup_memory"]["startup_s"].items()}
    measured = {
        "overhead_ratio": overhead.values(),
        "fastpath_speedup (unet_resnet18)": [fastpath.get("unet_resnet18", 0)],
        "logging_pct": logging_pct.values(),
        "startup_s.help": [startup["help"]],
        "startup_s.config_error": [startup["config_error"]],
    }
    return {
        "overhead_ratio": overhead,
        "fastpath_speedup": fastpath,
        "utilization_pct": {
            m: r["utilization_pct"] for m, r in rows["utilization"]["models"].items()
        },
        "startup_s": startup,
        "peak_rss_mb": rows["startup_memory"]["peak_rss_mb"]["median"],
        "logging_pct": logging_pct,
        "goals": {
            key: {
                "goal": f"{op} {threshold}",
                "met": all(COMPARE[op](value, threshold) for value in measured[key]),
            }
            for key, (op, threshold) in GOALS.items()
        },
    }


def _range(s: dict, fmt: str = "{:.3f}") -> str:
    return f"{fmt.format(s['median'])} ({fmt.format(s['min'])}-{fmt.format(s['max'])})"


def report(result: dict) -> str:
    rows, m = result["rows"], result["machine"]
    lines = [
        "# segkit throughput: against a hand-written PyTorch loop and this machine's limit",
        "",
        f"Machine: {m['processor']}, {m['cpus']} CPUs, {m['torch_threads']} torch threads, "
        f"{m['cpu_capability']}, torch {m['torch']}; {result['date']}, "
        f"{result['minutes']:.1f} min{' (smoke run)' if result['smoke'] else ''}.",
        "Medians of repetitions after warm-up, (min-max) in brackets; ratios pair by pair.",
        "",
        "## Goals",
        "",
        "| goal | target | met |",
        "|---|---|---|",
    ]
    for key, goal in result["goals"].items():
        lines.append(f"| {key} | {goal['goal']} | {'yes' if goal['met'] else 'NO'} |")
    lines += [
        "",
        "## 1. Framework overhead (segkit task + Trainer vs hand-written loop)",
        "",
        "| model | input | setting | segkit img/s | plain img/s | segkit/plain "
        "| logging % of step |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in rows["overhead"].items():
        lines.append(
            f"| {name} | {r['input']} | {r['setting']} | "
            f"{_range(r['segkit_images_per_s'], '{:.1f}')} | "
            f"{_range(r['plain_images_per_s'], '{:.1f}')} | {_range(r['overhead_ratio'])} | "
            f"{_range(r['logging_pct'], '{:.2f}')} |"
        )
    lines += [
        "",
        "## 2. Fast path (training step time vs plain fp32 NCHW)",
        "",
        "| model | input | setting | resolves to | step s | speed-up |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in rows["fastpath"].items():
        for setting, step in r["step_s"].items():
            lines.append(
                f"| {name} | {r['input']} | {setting} | {r['resolved'][setting]} | "
                f"{_range(step)} | {_range(r['speedup_vs_fp32_nchw'][setting])}x |"
            )
    util = rows["utilization"]
    lines += [
        "",
        "## 3. Machine limit (training FLOP/s vs matmul peak)",
        "",
        f"Peak of a {util['matmul_n']}^2 matmul: fp32 {util['peak_gflops']['fp32']} GFLOP/s, "
        f"bf16 {util['peak_gflops']['bf16']} GFLOP/s.",
        "",
        "| model | input | GFLOP/step | fp32 step s | fp32 GFLOP/s | fp32 % | bf16 step s | "
        "bf16 GFLOP/s | bf16 % |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in util["models"].items():
        lines.append(
            f"| {name} | {r['input']} | {r['gflop_per_step']} | {_range(r['step_s']['fp32'])} | "
            f"{r['gflops']['fp32']} | {r['utilization_pct']['fp32']} | "
            f"{_range(r['step_s']['bf16'])} | {r['gflops']['bf16']} | "
            f"{r['utilization_pct']['bf16']} |"
        )
    if any(r["utilization_pct"]["bf16"] > 100 for r in util["models"].values()):
        lines += [
            "",
            "bf16 above 100%: this CPU has no native bf16, and torch's bf16 matrix multiply "
            "takes a slow fallback while oneDNN's bf16 convolutions compute in fp32 internally; "
            "the bf16 matmul is then no limit for the convolutions (see README.md).",
        ]
    lines += [
        "",
        "## 4. Data loading (default num_workers) vs what the model consumes",
        "",
        "| data | train input | batch | workers | loader img/s | model img/s | loader/model |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in rows["loader"].items():
        lines.append(
            f"| {name} | {r['input'][0]}x{r['input'][1]} | {r['batch_size']} | "
            f"{r['num_workers']} | {_range(r['loader_images_per_s'], '{:.1f}')} | "
            f"{_range(r['model_images_per_s'], '{:.2f}')} | {r['loader_over_model']} |"
        )
    sm = rows["startup_memory"]
    lines += [
        "",
        "## 5. Startup and 6. memory",
        "",
        "| measure | value |",
        "|---|---|",
        f"| `python -m segkit.train --help` (s) | {_range(sm['startup_s']['help'], '{:.2f}')} |",
        f"| config error (s) | {_range(sm['startup_s']['config_error'], '{:.2f}')} |",
        f"| launch to first training step (s) | "
        f"{_range(sm['startup_s']['first_step'], '{:.2f}')} |",
        f"| peak RSS of `{sm['train_command']}` (MB) | {_range(sm['peak_rss_mb'], '{:.0f}')} |",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="one tiny model, one repetition")
    parser.add_argument("--out", type=Path, default=HERE, help="where results.md/json go")
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite results.md from results.json"
    )
    args = parser.parse_args()
    if args.report_only:
        result = json.loads((args.out / "results.json").read_text())
        (args.out / "results.md").write_text(report(result))
        return
    start = time.perf_counter()
    rows = collect(SMOKE if args.smoke else FULL)
    result = {
        **summarise(rows),
        "machine": machine(),
        "smoke": args.smoke,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "minutes": (time.perf_counter() - start) / 60,
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "results.md").write_text(report(result))
    print(report(result))


if __name__ == "__main__":
    main()
