"""`initmap recommend --model FILE.py:factory`: the trainable σ_w² band of a user's own network,
measured.

A coarse sweep over a log grid of σ_w² (powers of two, plus Flax's and PyTorch's default σ_w²
so that their verdicts are measured, not inferred) at the given depth and width, `seeds` per
point, with the quick preset's training as research/presets/quick.toml has it (momentum SGD at
its lr for its steps, converged = train accuracy ≥ 0.4; `lr`, `optimizer`, `steps`,
`target_acc`, `dataset` change it); then `refine`'s bisection of both band edges in log10 σ_w²
to `tol`. The recommended σ_w² is the band's centre in log σ_w² (the point farthest from both
edges, so the most robust to the edges' uncertainty); where the band runs off the grid, the
grid's end stands in for the edge and the answer says so. Mean-field theory's band for a plain
stack of the spec's activation is given beside it, as a reference line only: the module is not
that stack.
Runs are stored in a sweep folder like any other (a re-run resumes).
"""

import hashlib
import json
import math
import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from research.advice import conventions, refine
from research.common.errors import SpecError

GRID = tuple(2.0 ** k for k in range(-3, 6))  # 0.125 … 32
DEFAULTS = ("flax-default", "pytorch-default")


def _folder(model: str, depth: int, width: int, fields: dict, **training) -> Path:
    """runs/recommend-MODEL-dD-wW, then each training setting given away from its default (and
    a hash of any other sweep field given): a results folder holds one experiment, so another
    --steps or --dataset gets its own folder."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", Path(model.replace(":", "-")).name).strip("-")
    tags = "".join(f"-{key}{value}" for key, value in training.items() if value is not None)
    if fields:
        digest = hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode())
        tags += f"-f{digest.hexdigest()[:8]}"
    return Path("runs") / f"recommend-{slug}-d{depth}-w{width}{tags}"


def defaults(width: int) -> dict[str, float]:
    """Flax's and PyTorch's default kernel init as σ_w² at fan_in = width."""
    return {name: conventions.to_sigma_w2(name, width, width)["sigma_w2"] for name in DEFAULTS}


def coarse_spec(model: str, depth: int, width: int, activation: str = "tanh",
                sigma_b2: float = 0.05, dataset: str = "mnist1d", seeds: int = 4,
                steps: int | None = None, out: str | None = None, lr: float | None = None,
                optimizer: str | None = None, target_acc: float | None = None,
                fields: dict | None = None):
    """The coarse sweep's spec: the quick preset's training, these settings, and `fields` (any
    other sweep field, as `initmap sweep` takes it)."""
    from research.training import presets, spec

    grid = sorted({*GRID, *(float(f"{v:.6g}") for v in defaults(width).values())})
    raw = presets.read_toml("quick")  # its training, unless lr / optimizer / steps are given
    if lr is not None:
        raw.update(lr=[lr])
    if optimizer is not None:
        raw.update(optimizer=optimizer)
    if target_acc is not None:
        raw.update(target_acc=target_acc)
    fields = dict(fields or {})
    folder = _folder(model, depth, width, fields,
                     act=None if activation == "tanh" else activation,
                     b=None if sigma_b2 == 0.05 else f"{sigma_b2:g}",
                     data=None if dataset == "mnist1d" else re.sub(r"[^A-Za-z0-9]+", "", dataset),
                     steps=steps, lr=None if lr is None else f"{lr:g}", opt=optimizer,
                     target=None if target_acc is None else f"{target_acc:g}")
    raw.update(model=model, depth=[depth], width=[width], sigma_w2=grid, sigma_b2=[sigma_b2],
               activation=activation, dataset=dataset, seeds=seeds,
               name=folder.name, out=str(out or folder))
    if steps is not None:
        raw.update(steps=steps, log_every=min(raw["log_every"], steps),
                   chunk_steps=min(raw["chunk_steps"], steps))
    return spec.from_dict({**raw, **fields})


def refinement_runs(grid: list[float], tol: float, seeds: int) -> int:
    """At most: both edges bisected from one grid interval down to tol."""
    widest = max(math.log10(b / a) for a, b in zip(grid[:-1], grid[1:], strict=True))
    return 2 * refine.rounds_needed(widest, tol) * seeds


def measure(model: str, depth: int, width: int, activation: str = "tanh",
            sigma_b2: float = 0.05, dataset: str = "mnist1d", seeds: int = 4, tol: float = 0.1,
            steps: int | None = None, out: str | None = None,
            log: Callable[[str], None] = lambda s: None, lr: float | None = None,
            optimizer: str | None = None, target_acc: float | None = None,
            dry_run: bool = False, progress: bool = True, fields: dict | None = None) -> dict:
    """The measured band, the recommendation and the verdicts, the module's own init of each
    weight beside them (a dict; the CLI prints it). `fields`: any other sweep field, as
    `initmap sweep` takes it. `dry_run`: the module's mapping, its own init and the plan,
    nothing trained (a dict with "plan")."""
    from research.advice import recommend
    from research.networks import user
    from research.training import devices, plan, store, sweep
    from research.training.data import dataset_of

    if not (math.isfinite(tol) and tol > 0):
        raise SpecError("tol", tol, reason=f"must be a finite number > 0 (log10 units), got {tol}")
    s = coarse_spec(model, depth, width, activation, sigma_b2, dataset, seeds, steps, out, lr,
                    optimizer, target_acc, fields)
    devices.enable_compilation_cache()
    data = dataset_of(s)
    from research.training.spec import STATIC_AXES

    for name in STATIC_AXES:
        if len(getattr(s, name)) > 1:
            raise SpecError(name, list(getattr(s, name)), reason="recommend --model measures "
                            "one network: give one value")
    notes = sweep.check_data(s, data)
    # the module the sweep trains, built from the run's own fields (one bucket)
    ((_, cfg),) = sweep.model_configs(s, data)
    built = user.built_for(cfg)
    own = user.own_init(built)
    grid = plan.Grid(s)
    slots = grid.slots(s.max_members)
    extra = refinement_runs(list(s.sigma_w2), tol, seeds)
    optimizer_ = s.optimizer if isinstance(s.optimizer, str) else s.optimizer[0]
    training = (f"{optimizer_} at lr {s.lr[0]:g}, {s.steps} steps, batch {s.batch_size[0]}, "
                f"converged = train accuracy ≥ {s.target_acc:g} on {s.dataset}")
    if dry_run:
        return {"dry_run": True, "model": model, "depth": depth, "width": width,
                "notes": list(notes), "own_init": own,
                "plan": "\n".join([
                    f"{model} ({built.kind}) at depth {depth}, width {width}:",
                    user.mapping_text(built), "", *notes, *own_init_text(own), "",
                    f"plan: {len(grid)} coarse runs (σ_w² ∈ "
                    f"{', '.join(f'{v:.3g}' for v in s.sigma_w2)} × {seeds} seeds), then ≤ "
                    f"{extra} refinement runs bisecting both band edges to {tol:g} in log10 "
                    f"σ_w²; {training}; into {s.out}", "dry run: nothing trained"])}
    for line in notes:
        log(line)
    started = time.perf_counter()
    log(f"timing short runs of the coarse and of a refinement population to estimate the total "
        f"({training})")
    total, compile_s = estimate(s, grid, slots, data, extra // (2 * seeds), seeds)
    timed = time.perf_counter() - started
    log(f"estimated time: {total / 60:.1f} min ({len(grid)} coarse runs + ≤ {extra} refinement "
        f"runs × {s.steps} steps; compile ≈ {compile_s:.0f} s)")
    started = time.perf_counter()
    result = sweep.run_sweep(s, progress=progress)
    found = refine.refine(result.out, tol=tol, log=log)
    runs = store.load_runs(result.out)
    cells = (runs[(runs.depth == depth) & (runs.width == width) & (runs.seed < seeds)]
             .assign(ok=lambda f: f.outcome == "converged").groupby("sigma_w2").ok
             .agg(k="sum", n="count").reset_index())
    edges = {row["side"]: row for row in found["edges"]}
    band = _band(edges, list(s.sigma_w2))
    theory = recommend.theory_band(activation, sigma_b2, depth)
    verdicts = []
    for name, w2 in defaults(width).items():
        at = cells[np.isclose(cells.sigma_w2, w2, rtol=1e-5)]
        k, n = (int(at.k.iloc[0]), int(at.n.iloc[0])) if len(at) else (0, 0)
        verdicts.append({"default": name, "sigma_w2": w2, "k": k, "n": n,
                         "verdict": _verdict(w2, band, k, n)})
    for row in own:
        row["verdict"] = _own_verdict(row, band)
    return {"model": model, "depth": depth, "width": width, "activation": activation,
            "sigma_b2": sigma_b2, "dataset": dataset, "seeds": seeds, "tol": tol,
            "steps": s.steps, "run_dir": str(result.out), "notes": list(notes),
            "recommended_sigma_w2": band["recommended"], "why": band["why"], "band": band,
            "cells": cells.to_dict("records"), "defaults": verdicts, "own_init": own,
            "theory": {"activation": activation, **{k: theory[k] for k in (
                "critical_sigma_w2", "lower", "upper", "empty")}},
            "runs": found["runs"], "estimated_s": total, "estimate_timing_s": timed,
            "wall_s": time.perf_counter() - started}


def estimate(s, grid, slots, data, rounds: int, seeds: int) -> tuple[float, float]:
    """(seconds for the coarse sweep and `rounds` refinement rounds, compile seconds per
    program): each timed on a short run of its own population (the coarse one and one of a
    round's 2 × seeds members: a small population costs more per run than a large one). A
    short run of all the steps is the coarse sweep's own program, compiled here: its compile
    is not counted again; a round's is (a round with one edge left open has seeds members,
    another program)."""
    import dataclasses

    from research.training import plan, sweep

    coarse = sweep.calibrate(grid, slots, data)
    lo, hi = s.sigma_w2[0], s.sigma_w2[-1]
    fine_grid = plan.Grid(dataclasses.replace(s, sigma_w2=(lo, hi), seeds=seeds))
    fine = sweep.calibrate(fine_grid, fine_grid.slots(s.max_members), data)
    def compiled(timed):  # compile seconds the run will spend on the timed program
        return 0.0 if timed["probe_steps"] == s.steps else timed["compile_s_per_bucket"]

    coarse_s = coarse["estimated_s"] - coarse["compile_s_per_bucket"] + compiled(coarse)
    per_round = fine["estimated_s"] - fine["compile_s_per_bucket"]
    total = coarse_s + (fine["compile_s_per_bucket"] + rounds * per_round if rounds else 0.0)
    return total, coarse["compile_s_per_bucket"]


def own_init_text(own: list[dict]) -> list[str]:
    """The module's own init as σ_w², one line per layer kind: the tensors whose paths differ
    only in their numbers (blocks_0, blocks_1, …) with one use and fan-in together (their
    mean σ_w²; each tensor's own is in --json)."""
    if not own:
        return []
    lines = ["own init     each weight as the module's own initializers draw it: σ_w² = mean "
             "square × fan-in"]
    groups: dict[tuple, list[dict]] = {}
    for row in own:
        kind = re.sub(r"\d+", "*", row["path"])
        groups.setdefault((kind, row["role"], row["fan_in"]), []).append(row)
    wide = max(len(kind) for kind, _, _ in groups)
    for (kind, role, fan), rows in groups.items():
        w2 = float(np.mean([r["sigma_w2"] for r in rows]))
        verdicts = sorted({r.get("verdict", "") for r in rows} - {""})
        count = f"{len(rows)} tensors" if len(rows) > 1 else ""
        lines.append((f"  {kind:{wide}s} {role:8s} fan_in {fan:<5d} σ_w² {w2:<7.3g} "
                      f"{count:10s} {'; '.join(verdicts)}").rstrip())
    return lines


def _own_verdict(row: dict, band: dict) -> str:
    w2 = row["sigma_w2"]
    if row["role"] == "lookup":
        return "its lookup: the band draws the table at its dot's fan-in"
    if w2 == 0:
        return "zero: starts at 0 (initmap's readout = zero)" if row["role"] == "readout" else (
            "zero: starts at 0")
    if band["recommended"] is None:
        return "no band measured"
    if band["lower"] is not None and w2 < band["lower"]:
        return "below the band"
    if band["upper"] is not None and w2 > band["upper"]:
        return "above the band"
    return "inside the band"


def _band(edges: dict, grid: list[float]) -> dict:
    out = {"lower": None, "upper": None, "lower_interval": None, "upper_interval": None,
           "lower_status": edges["lower"]["status"], "upper_status": edges["upper"]["status"],
           "recommended": None, "why": ""}
    if out["lower_status"] == "none":
        out["why"] = "no σ_w² of the grid trained: nothing to recommend at this depth and steps"
        return out
    for side in ("lower", "upper"):
        row = edges[side]
        if row["status"] == "refined":
            out[side] = float(row["edge_sigma_w2"])
            out[f"{side}_interval"] = [float(row["sigma_w2_lo"]), float(row["sigma_w2_hi"])]
    lo = out["lower"] if out["lower"] is not None else min(grid)
    hi = out["upper"] if out["upper"] is not None else max(grid)
    out["recommended"] = float(f"{math.sqrt(lo * hi):.3g}")
    open_ = [f"{side} edge beyond the grid ({'<' if side == 'lower' else '>'} "
             f"{min(grid) if side == 'lower' else max(grid):g}, the grid's end used)"
             for side in ("lower", "upper") if out[side] is None]
    out["why"] = ("the centre of the measured band in log σ_w² (farthest from both edges)"
                  + ("; " + "; ".join(open_) if open_ else ""))
    return out


def _verdict(w2: float, band: dict, k: int, n: int) -> str:
    measured = f"converged {k}/{n} at σ_w² = {w2:.3g}" if n else "not measured"
    if band["recommended"] is None:
        return f"nothing trains here ({measured})"
    if band["lower"] is not None and w2 < band["lower"]:
        return f"below the band: too small a scale ({measured})"
    if band["upper"] is not None and w2 > band["upper"]:
        return f"above the band: too large a scale ({measured})"
    return f"inside the band ({measured})"


def text(r: dict) -> str:
    def num(v):
        return "—" if v is None else f"{v:.3g}"

    b, th = r["band"], r["theory"]
    lines = [f"{r['model']} · depth {r['depth']} · width {r['width']} · {r['dataset']}, "
             f"{r['steps']} steps, {r['seeds']} seeds per σ_w², σ_b² = {r['sigma_b2']:g}"]
    lines.append(f"recommended  σ_w² = {num(r['recommended_sigma_w2'])}: {r['why']}")

    def edge(side):
        if b[side] is not None:
            lo, hi = b[f"{side}_interval"]
            return f"{b[side]:.3g} (in [{lo:.3g}, {hi:.3g}])"
        return b[f"{side}_status"]
    lines.append(f"band         lower edge {edge('lower')}, upper edge {edge('upper')} "
                 f"(bisected to {r['tol']:g} in log10 σ_w²; trains = P(converged) ≥ 0.5)")
    for d in r["defaults"]:
        lines.append(f"{d['default']:16s} σ_w² = {d['sigma_w2']:.3g}: {d['verdict']}")
    lines += own_init_text(r["own_init"])
    if th["critical_sigma_w2"] is not None:
        band = ("none" if th["empty"] else f"[{num(th['lower']) if th['lower'] else '0'}, "
                f"{num(th['upper']) if th['upper'] else '∞'}]")
        lines.append(f"mean field   a plain {th['activation']} stack of this depth: critical "
                     f"σ_w² = {th['critical_sigma_w2']:.3g}, band (6·ξ_c ≥ depth) {band} "
                     "(reference only: the module is not that stack)")
    # a no-break space inside each cell: a wrapped line breaks between cells, not in one
    lines.append("measured     " + "  ".join(f"{c['sigma_w2']:.3g}:\u00a0{c['k']}/{c['n']}"
                                             for c in r["cells"]))
    ru = r["runs"]
    lines.append(f"runs         {ru['coarse']} coarse + {ru['refinement']} refinement in "
                 f"{r['run_dir']} ({r['wall_s']:.0f} s; estimated {r['estimated_s']:.0f} s, "
                 f"after {r['estimate_timing_s']:.0f} s of timed runs)")
    return "\n".join(lines)

