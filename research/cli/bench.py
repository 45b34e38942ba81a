"""`initmap bench`: the engine's network-steps/s against baselines, printed as tables."""

import argparse
import sys

from research.cli.verb import Verb
from research.common import strict_json as json  # null, never NaN or Infinity
from research.common.errors import SpecError

BENCH_PARTS = ("speed", "step-cost", "compaction", "compile", "flax", "depths", "recommend",
               "first-run")
BENCH_EXAMPLES = """\
examples:
  initmap bench --only compile         # compile time against depth, per architecture
  initmap bench --only depths          # a 9-depth sweep: one program per depth vs pad_depth
  initmap bench --only step-cost       # bare step vs checks, freezing, momentum, logging
  initmap bench --only recommend       # a whole `recommend` process ÷ `import jax`
  initmap bench --only first-run --repeats 3   # `initmap sweep quick` cold, 3 fresh processes
  initmap bench --only speed --torch-python /path/to/venv-with-torch/bin/python
  initmap bench                        # all cases, 1000 steps; a few minutes on 2 cores
  initmap bench --steps 200 --json     # shorter, machine-readable
  pip install -e ".[bench]"            # adds the PyTorch baseline
"""


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--steps", type=int, default=1000, help="SGD steps per network (default 1000)")
    p.add_argument("--baseline-networks", type=int, default=32,
                   help="networks the baselines train before scaling to the population "
                        "(default 32)")
    p.add_argument("--only", nargs="+", choices=BENCH_PARTS, metavar="PART",
                   help=f"run only these parts ({', '.join(BENCH_PARTS)}; default all)")
    p.add_argument("--cases", nargs="+", metavar="CASE",
                   help="the speed part's cases by first word (small, target, medium, large; "
                        "default all)")
    p.add_argument("--torch-python", default=sys.executable, metavar="PYTHON",
                   help="the interpreter the PyTorch baseline runs under (one with torch and "
                        "numpy; default this one)")
    p.add_argument("--preset", default="quick",
                   help="the first-run part's preset (default quick)")
    p.add_argument("--repeats", type=int, default=1,
                   help="the first-run part's fresh processes (default 1)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")


def _run(args: argparse.Namespace) -> int:
    from research.measure import bench
    from research.training import devices

    if args.steps < 1:
        raise SpecError("steps", args.steps, reason="must be >= 1")
    if args.repeats < 1:
        raise SpecError("repeats", args.repeats, reason="must be >= 1")
    if args.baseline_networks < 1:
        raise SpecError("baseline_networks", args.baseline_networks, reason="must be >= 1")
    parts = set(args.only or BENCH_PARTS)
    out = {"devices": devices.describe()}
    if "speed" in parts:
        out["rows"] = bench.run(steps=args.steps, baseline_networks=args.baseline_networks,
                                cases=bench.pick_cases(args.cases),
                                torch_python=args.torch_python)
    if "step-cost" in parts:
        from research.measure import stepcost

        out["step_cost"] = stepcost.ladder(steps=min(args.steps, 500))
    if "compaction" in parts:
        out["compaction"] = bench.compaction(steps=args.steps)
    if "compile" in parts:
        out["compile_vs_depth"] = bench.compile_vs_depth()
    if "flax" in parts:
        out["flax"] = bench.flax_vs_builtin(steps=args.steps)
    if "depths" in parts:
        out["depths"] = bench.depth_padding(steps=min(args.steps, 500))
    if "recommend" in parts:
        out["recommend"] = bench.recommend_vs_import_jax()
    if "first-run" in parts:
        out["first_run"] = bench.first_run(args.preset, args.repeats)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    if "rows" in out:
        print(table(out["rows"], out["devices"]))
    if "step_cost" in out:
        print("\nper-step cost (256 tanh MLPs, width 32, depth 4, batch 64; compiled, warm):\n")
        print(step_cost_table(out["step_cost"]))
    if "compaction" in out:
        c = out["compaction"]
        print(f"\ncompaction: {c['networks']} networks × {c['steps']} steps, {c['diverged']} "
              f"diverge at once: {c['without_s']:.1f} s without, {c['with_s']:.1f} s with "
              f"({c['speedup']:.2f}×)")
    if "flax" in out:
        f = out["flax"]
        print(f"\nyour own network: a Flax linen MLP against the built-in MLP, {f['case']}, "
              f"{f['networks']} networks × {f['steps']} steps: {f['flax_s']:.1f} s vs "
              f"{f['builtin_s']:.1f} s with compilation ({f['ratio']:.2f}×), "
              f"{f['flax_warm_s']:.1f} s vs {f['builtin_warm_s']:.1f} s compiled "
              f"({f['ratio_warm']:.2f}×)")
    if "depths" in out:
        print("\n" + depths_table(out["depths"]))
    if "recommend" in out:
        r = out["recommend"]
        print(f"\n`{r['command']}`: {r['recommend_s']:.2f} s, `python -c \"import jax\"`: "
              f"{r['import_jax_s']:.2f} s (medians of {r['repeats']} fresh processes): "
              f"{r['ratio']:.2f}×; CPU time {r['recommend_cpu_s']:.2f} s against "
              f"{r['import_jax_cpu_s']:.2f} s: {r['cpu_ratio']:.2f}×")
    if "first_run" in out:
        print("\n" + first_run_table(out["first_run"]))
    if "compile_vs_depth" in out:
        print("\ncompile time of one training chunk (s), width 32, 8 members; repeated layers "
              "are scanned, so it should not grow with depth:")
        print(compile_table(out["compile_vs_depth"]))
    return 0


def _s(value) -> str:
    return "—" if value is None else f"{value:.1f}"


def _x(value) -> str:
    return "—" if value is None else f"{value:.1f}×"


def _training_ratio(row: dict) -> float | None:
    """The plain loop's training time over the sweep's training phase (compile apart)."""
    plain = row["plain_loop"]
    return None if plain is None else plain["train_s"] / row["sweep"]["train_s"]


def table(rows: list[dict], devices: list[str]) -> str:
    """Markdown tables (they go into the README as printed): whole processes against each
    other, then where the sweep's time went."""
    lines = [f"devices: {len(devices)} × {devices[0].split(' ', 1)[1] if devices else '?'}; "
             "every time is a fresh process with compilation (no compile cache); baselines "
             "trained on a subset and scaled",
             "",
             f"matmul peak measured here: {rows[0]['matmul_peak_flops_per_s'] / 1e9:.0f} GFLOP/s"
             if rows else "",
             "",
             "| case | networks × steps | initmap sweep | plain loop (jit+scan) | PyTorch eager "
             "| one-at-a-time (engine's path) | ÷ plain loop | ÷ PyTorch | ÷ one-at-a-time "
             "| training phase ÷ plain loop's |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        torch = "not installed" if r["torch_s"] is None else f"{r['torch_s']:.1f} s"
        lines.append(
            f"| {r['case']} | {r['networks']} × {r['steps']} | {r['sweep_s']:.1f} s | "
            f"{_s(r['plain_loop_s'])} s | {torch} | {_s(r['one_at_a_time_s'])} s | "
            f"{_x(r['speedup_vs_plain_loop'])} | {_x(r['speedup_vs_torch'])} | "
            f"{_x(r['speedup_vs_one_at_a_time'])} | {_x(_training_ratio(r))} |")
    lines += ["", "Where the sweep's time went (s since the process started; compile from "
              "jax's own events):", "",
              "| case | imports | spec + data | plan | init + diagnostics | first step at | "
              "compile (all) | training | after training | training net-steps/s | "
              "of peak: training | of peak: whole |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        t = r["sweep"]
        after = t["wall_s"] - t["first_step"] - t["train_s"]
        lines.append(
            f"| {r['case']} | {t['imports']:.1f} | {t['data'] - t['imports']:.1f} | "
            f"{t['plan'] - t['data']:.1f} | {t['init'] - t['plan']:.1f} | "
            f"{t['first_step']:.1f} | {t['compile_s']:.1f} | {t['train_s']:.1f} | "
            f"{after:.1f} | {r['train_net_steps_per_s']:,.0f} | "
            f"{r['peak_fraction_training']:.0%} | {r['peak_fraction_process']:.0%} |")
    return "\n".join(lines)


def step_cost_table(rows: list[dict]) -> str:
    lines = ["| step | net-steps/s | time ÷ bare step | compile (s) |", "| --- | --- | --- | --- |"]
    lines += [f"| {r['step']} | {r['net_steps_per_s']:,.0f} | {r['vs_bare']:.2f} | "
              f"{r['compile_s']:.1f} |" for r in rows]
    return "\n".join(lines)


def depths_table(d: dict) -> str:
    """One program per depth against pad_depth's one at the deepest, each a whole process."""
    lines = [f"depths {', '.join(map(str, d['depths']))}: {d['networks']} tanh MLPs (width 32) "
             f"× {d['steps']} steps, each a fresh process without compile cache; padded, every "
             f"member runs {max(d['depths']) - 1} hidden layers ({d['stack_ratio']:.2f}× the "
             "mean)", "",
             "| programs | wall (s) | CPU (s) | compile (s) | training (s) |",
             "| --- | --- | --- | --- | --- |"]
    for key, label in (("per_depth", f"one per depth ({len(d['depths'])})"),
                       ("padded", "pad_depth (1)")):
        t = d[key]
        lines.append(f"| {label} | {t['wall_s']:.1f} | {t['cpu_s']:.1f} | {t['compile_s']:.1f} "
                     f"| {t['train_s']:.1f} |")
    return "\n".join(lines)


def first_run_table(d: dict) -> str:
    """A preset's first run, each a whole fresh process without compile cache."""
    lines = [f"`initmap sweep {d['preset']}` as a first run (a fresh process, no compile cache, "
             "phase.png drawn):", "",
             "| run | wall (s) | CPU (s) | compile (s, all threads) | training (s) |",
             "| --- | --- | --- | --- | --- |"]
    lines += [f"| {i} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['compile_s']:.1f} | "
              f"{r['train_s']:.1f} |" for i, r in enumerate(d["runs"], start=1)]
    return "\n".join(lines)


def compile_table(rows: list[dict]) -> str:
    import pandas as pd

    return pd.DataFrame(rows).to_string(index=False)


VERB = Verb(name="bench", help="network-steps/s of the engine against baselines",
            description="Train the same MLP populations with the engine, one network at a time "
                        "(jit + lax.scan) and with a PyTorch eager loop; print network-steps/s "
                        "and the ratios.",
            epilog=BENCH_EXAMPLES, add_arguments=_add_arguments, run=_run)
