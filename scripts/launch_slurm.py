"""Launch a sweep as a Slurm job array: one task per shard, all writing to one results folder.

Task k of N runs, in a fresh process,

    python -m research sweep SPEC --shard k/N --quiet --no-plot [extra sweep args]

so it trains every N-th population of the sweep and writes its own parts and
manifest-shard-k-of-N.json into the shared folder; `research.load_runs(OUT)` reads the union.
A subprocess (not a function call inside the submitit worker) gives each task a fresh
interpreter, so XLA's device flags are set before jax is imported, and its exit code is checked:
a shard that fails raises, and submitit marks its task failed.

Examples (the results folder and --log-dir must be on a filesystem every node sees):

    python scripts/launch_slurm.py dip-tanh --shards 16 --partition cpu --cpus-per-task 8
    python scripts/launch_slurm.py my.toml --shards 4 --gpus-per-node 1 --time-min 240 \\
        -- --seeds 8 --out /shared/runs/my
    python scripts/launch_slurm.py quick --shards 2 --local --wait    # no Slurm: local processes

Resumable: re-launching the same command after a failure, a timeout or a preemption re-trains
only what is missing. That comes for free from the sweep: each shard skips populations whose
runs are already stored, and a killed task leaves only whole parts behind.

Why shards and not `jax.distributed`: the populations of a sweep are independent, so shards need
no communication at all. There is no collective to hang when one node is slow or dies; a failed
node loses only its own shard's in-flight population; and shards run on any mix of machines
(CPU and GPU nodes, different sizes, a laptop), started whenever the scheduler finds room.

Which runs a shard trains depends on the spec alone (not on a node's devices or memory), so
tasks on different kinds of node still partition the sweep exactly. Each task splits the cores
it was given into XLA devices (INITMAP_HOST_DEVICES: --cpus-per-task when given).
"""

import argparse
import os
import subprocess
import sys

import submitit

from research import load_runs
from research.cli.main import Parser, build_parser
from research.common.errors import SpecError
from research.training import presets, spec
from research.training.devices import HOST_DEVICES_ENV

EXAMPLES = """\
examples:
  %(prog)s dip-tanh --shards 16 --partition cpu --cpus-per-task 8
  %(prog)s my.toml --shards 4 --gpus-per-node 1 -- --seeds 8 --out /shared/runs/my
  %(prog)s quick --shards 2 --local --wait        # no Slurm: N local processes at once

Everything after `--` is passed to every task's `initmap sweep` (spec fields, --out). Re-running
the same command resumes: only missing runs are trained. Results: research.load_runs(OUT).
With --local, tasks see no GPU unless --gpus-per-node is given (submitit sets
CUDA_VISIBLE_DEVICES).
"""


def run_shard(source: str, shard: str, extra: list[str], cwd: str, host_devices: str) -> str:
    """One array task: the sweep of one shard, in a fresh process; raise if it fails."""
    cmd = [sys.executable, "-m", "research", "sweep", source, "--shard", shard,
           "--quiet", "--no-plot", *extra]
    print("running:", " ".join(cmd), flush=True)
    env = {**os.environ, HOST_DEVICES_ENV: host_devices}
    code = subprocess.run(cmd, cwd=cwd, env=env).returncode
    if code != 0:
        raise RuntimeError(f"shard {shard} exited with code {code}; its stderr is in this log")
    return shard


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    split = argv.index("--") if "--" in argv else len(argv)
    own, extra = argv[:split], argv[split + 1:]
    p = Parser(prog="launch_slurm.py", description="Submit a sweep as a Slurm job array, one "
               "task per shard.", epilog=EXAMPLES,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="PRESET|FILE.toml", help="what `initmap sweep` takes")
    p.add_argument("--shards", type=int, required=True, metavar="N", help="array tasks (shards)")
    p.add_argument("--partition", metavar="P", help="Slurm partition")
    p.add_argument("--time-min", type=int, default=120, metavar="M",
                   help="time limit per task, minutes (default 120)")
    p.add_argument("--cpus-per-task", type=int, metavar="C",
                   help=f"CPUs per task; also each task's {HOST_DEVICES_ENV} (default: "
                        f"${HOST_DEVICES_ENV} if set, else the cores each task may use)")
    p.add_argument("--gpus-per-node", type=int, metavar="G", help="GPUs per task")
    p.add_argument("--mem-gb", type=float, metavar="X", help="memory per task")
    p.add_argument("--local", action="store_true",
                   help="run the tasks as local processes (submitit's LocalExecutor), not Slurm")
    p.add_argument("--log-dir", metavar="DIR",
                   help="submitit's pickles and task logs (default OUT/logs)")
    p.add_argument("--wait", action="store_true",
                   help="wait for every task, print a summary; exit 1 if any failed")
    return p.parse_args(own), extra


def resolve_spec(source: str, extra: list[str]) -> spec.SweepSpec:
    """The spec every task will run, validated here with the sweep's own parser (bad input:
    one line, exit 2) so that a typo fails now, not in N queued tasks."""
    args, unknown = build_parser().parse_known_args(["sweep", source, *extra])
    if unknown:
        args.verb_parser.error("unrecognized arguments: " + " ".join(unknown))
    if args.shard or args.fresh:
        raise SpecError("extra", reason="--shard and --fresh cannot be passed to a launch "
                        "(shards are set per task; delete the folder once to start over)")
    overrides = {key[len("field_"):]: value for key, value in vars(args).items()
                 if key.startswith("field_") and value is not None}
    return presets.load(source, overrides)


def main(argv: list[str]) -> int:
    args, extra = parse_args(argv)
    if args.shards < 1:
        raise SpecError("shards", args.shards, reason=f"must be >= 1, got {args.shards}")
    sweep_spec = resolve_spec(args.source, extra)
    out = spec.out_dir(sweep_spec).absolute()
    run_ids = {run.run_id for run in spec.expand(sweep_spec)}
    n_runs = len(run_ids)
    # Empty: each task counts the cores it may run on (research.devices).
    host_devices = os.environ.get(HOST_DEVICES_ENV) or str(args.cpus_per_task or "")

    try:
        executor = submitit.AutoExecutor(folder=args.log_dir or out / "logs",
                                         cluster="local" if args.local else "slurm")
    except RuntimeError as err:  # SlurmExecutor: no `srun` on this machine
        raise SpecError("cluster", reason=f"{err} (use --local to run here)") from None
    executor.update_parameters(
        name=f"initmap-{sweep_spec.name}", timeout_min=args.time_min,
        cpus_per_task=args.cpus_per_task, gpus_per_node=args.gpus_per_node, mem_gb=args.mem_gb,
        slurm_partition=args.partition, slurm_array_parallelism=args.shards)  # None: not set
    n = args.shards
    with executor.batch():  # one job array
        jobs = [executor.submit(run_shard, args.source, f"{k}/{n}", extra, os.getcwd(),
                                host_devices) for k in range(1, n + 1)]

    print(f"submitted {n} shards of {sweep_spec.name} ({n_runs} runs) -> {out}")
    for k, job in enumerate(jobs, 1):
        print(f"  shard {k}/{n}: job {job.job_id}  log {job.paths.stderr}")
    if not args.local:
        array = jobs[0].job_id.split("_")[0]
        print(f"queue:     squeue -j {array}   (sacct -j {array} once they end)")
    print(f"progress:  {out}/manifest-shard-*-of-{n}.json (status, runs per bucket)")
    print(f"stored:    python -c \"import research; print(len(research.load_runs('{out}')))\"")
    if not args.wait:
        return 0

    failed = [(k, job) for k, job in enumerate(jobs, 1) if job.exception() is not None]
    stored = load_runs(out)
    n_stored = int(stored["run_id"].isin(run_ids).sum()) if len(stored) else 0
    print(f"{n_stored} of {n_runs} runs stored in {out}; {n - len(failed)} of {n} shards "
          "succeeded" + ("; re-run the same command to resume" if failed else ""))
    for k, job in failed:
        sys.stderr.write(f"shard {k}/{n} (job {job.job_id}) failed: see {job.paths.stderr}\n")
    return 1 if failed or n_stored < n_runs else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except SpecError as err:
        sys.stderr.write(f"launch_slurm.py: error: {err}\n")
        sys.exit(2)
