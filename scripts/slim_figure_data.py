"""Drop the per-run curves and init diagnostics from stored sweep parts, keeping every config
column, the outcome and the scalar results: what a figure of tens of thousands of networks
reads, at a fifth of the size (a 65,536-run fractal landscape: ~8 MB with curves).

    python scripts/slim_figure_data.py figures/data/fractal-*

Resuming and `initmap figures` read slim parts as they read full ones (they need run_id and
the config columns); `--rerun --fresh` would bring the curves back.
"""

import os
import sys
from pathlib import Path

import pyarrow.parquet as pq

DROP = ("loss_curve", "acc_curve", "diversity_curve", "curve_steps", "init_q",
        "init_grad_norm")


def slim(part: Path) -> tuple[int, int]:
    table = pq.read_table(part)
    keep = [c for c in table.column_names if c not in DROP]
    before = part.stat().st_size
    if len(keep) < len(table.column_names):
        tmp = part.with_suffix(".slim.tmp")
        pq.write_table(table.select(keep), tmp, compression="zstd")
        os.replace(tmp, part)
    return before, part.stat().st_size


def main() -> None:
    total = [0, 0]
    for folder in sys.argv[1:]:
        for part in sorted(Path(folder, "runs").glob("part-*.parquet")):
            before, after = slim(part)
            total[0] += before
            total[1] += after
    print(f"{total[0] / 1e6:.2f} MB -> {total[1] / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
