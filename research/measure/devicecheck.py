"""One table for an accelerator (`scripts/gpu_check.sh`: `python -m research.measure.devicecheck`):
per case, the engine's network-steps/s on a compiled population (warm: compile apart), the
fraction of the measured matmul peak, and the memory per member (the planner's estimate and
XLA's own analysis of the compiled chunk); a Flax linen MLP of the target's shapes beside the
built-in one. Runs on CPU too (small steps), which is how it is tested before a GPU is lent.
"""

import sys

import jax
import jax.numpy as jnp

from research.measure import bench
from research.training import engine, plan
from research.training.data import load_dataset

CASES = (bench.Case("tiny (w16 d4)", 16, 4, 256), bench.Case("target (w32 d4)", 32, 4, 256),
         bench.Case("medium (w64 d10)", 64, 10, 256), bench.Case("large (w256 d4)", 256, 4, 256))


def measured_member_bytes(runs, dataset) -> float:
    """XLA's memory analysis of one compiled training chunk, per member."""
    program, hp, data = engine.place(runs, dataset)
    state = jax.eval_shape(lambda h, d: engine.init_population(h, d, program)[0], hp, data)
    compiled = engine.train_population_chunk.lower(state, hp, data, jnp.int32(0), program,
                                                   1).compile()
    m = compiled.memory_analysis()
    if m is None:
        return float("nan")
    used = (m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
            - m.alias_size_in_bytes)
    return used / len(runs)


def rows(steps: int = 1000, cases=CASES) -> list[dict]:
    dataset = load_dataset("mnist1d")
    peak = bench.matmul_peak()
    out = []
    for case in cases:
        runs = bench._runs(case, steps)
        cold, warm = bench._time_warm(runs, dataset)
        net_steps = len(runs) * steps
        out.append({"case": case.label, "networks": len(runs), "steps": steps,
                    "net_steps_per_s": net_steps / warm, "compile_s": max(cold - warm, 0.0),
                    "peak_fraction": bench.flops_per_net_step(case) * net_steps / warm / peak,
                    "estimated_mb_per_member": plan.member_bytes(
                        runs[0], dataset.in_shape, dataset.out_dim) / 2**20,
                    "measured_mb_per_member": measured_member_bytes(runs, dataset) / 2**20,
                    "matmul_peak_tflops": peak / 1e12})
    flax = bench.flax_vs_builtin(steps=steps, case=cases[1])
    out.append({**out[1], "case": f"Flax linen MLP, {cases[1].label}",
                "net_steps_per_s": out[1]["net_steps_per_s"] / flax["ratio_warm"],
                "peak_fraction": out[1]["peak_fraction"] / flax["ratio_warm"],
                "compile_s": float("nan"), "measured_mb_per_member": float("nan")})
    return out


def table(rows: list[dict]) -> str:
    lines = [f"devices: {', '.join(d.device_kind for d in jax.local_devices())}; matmul peak "
             f"{rows[0]['matmul_peak_tflops'] * 1e3:,.0f} GFLOP/s; rates warm (compile apart)", "",
             "| case | networks × steps | net-steps/s | of matmul peak | compile (s) | "
             "MB per member (estimate) | MB per member (XLA) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['case']} | {r['networks']} × {r['steps']} | {r['net_steps_per_s']:,.0f} | "
              f"{r['peak_fraction']:.1%} | {r['compile_s']:.1f} | "
              f"{r['estimated_mb_per_member']:.2f} | {r['measured_mb_per_member']:.2f} |"
              for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(rows(steps=int(sys.argv[1]) if len(sys.argv) > 1 else 1000)))
