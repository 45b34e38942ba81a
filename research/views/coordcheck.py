"""`initmap coordcheck`: the size of each layer's activations over the first training steps,
across widths (Yang et al. 2022's coordinate check). Under μP the curves are flat in width;
under the standard parametrisation with Adam, the activations after a few steps grow with
width (each update moves a width-n layer's output by ~ lr·n).

Each width is one vmapped population over seeds, trained with the engine's own optimizer
(μP's per-layer rates included) on the member's own minibatches.
"""

import argparse
import dataclasses
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from research.common.errors import SpecError
from research.networks.registry import MODELS
from research.training import engine
from research.training import spec as spec_mod
from research.training.data import load_dataset
from research.views.report import pyplot, save_figure

EPILOG = """\
examples:
  initmap coordcheck                                    # mlp, standard vs mup, Adam
  initmap coordcheck --arch transformer --norm pre_ln --widths 32 64 128 256
  initmap coordcheck --optimizer sgd --lr 0.1 --json    # rows: width, step, layer, rms

Each width is a population of --seeds networks (MNIST-1D, batch 32, the spec defaults otherwise);
the figure goes to --out.
"""


def measure(base: spec_mod.SweepSpec, widths: list[int], steps: int,
            parametrizations: tuple[str, ...]) -> pd.DataFrame:
    """Rows (parametrization, width, step, layer, rms): the RMS over seeds and a fixed batch of
    every layer's pre-activation (or residual stream), and of the output (layer "out")."""
    dataset = load_dataset(base.dataset, base.teacher_depth, base.teacher_width)
    rows = []
    for name in parametrizations:
        for width in widths:
            spec = spec_mod.validate(dataclasses.replace(base, width=(width,),
                                                         parametrization=name))
            program, hp, data = engine.place(spec_mod.expand(spec), dataset)
            squares = np.asarray(jax.device_get(
                _trajectory(program, hp, data, steps, MODELS[program.arch])))
            sizes = np.sqrt(np.mean(squares, axis=0))  # over seeds
            for step in range(steps + 1):
                for layer, value in enumerate(sizes[step]):
                    label = "out" if layer == sizes.shape[1] - 1 else str(layer)
                    rows.append({"parametrization": name, "width": width, "step": step,
                                 "layer": label, "rms": float(value)})
    return pd.DataFrame(rows)


def width_slopes(frame: pd.DataFrame, step: int) -> pd.DataFrame:
    """Per parametrisation and layer: d log(rms) / d log(width) at `step` (0: flat in width)."""
    at = frame[frame["step"] == step]
    rows = []
    for (name, layer), group in at.groupby(["parametrization", "layer"], sort=False):
        slope = np.polyfit(np.log(group["width"]), np.log(group["rms"]), 1)[0]
        rows.append({"parametrization": name, "layer": layer, "slope": float(slope)})
    return pd.DataFrame(rows)


def plot(frame: pd.DataFrame, path: Path, title: str) -> Path:
    """One panel per parametrisation: rms against width, a line per layer at the last step
    (solid) and at init (dotted)."""
    plt = pyplot()
    names = list(dict.fromkeys(frame["parametrization"]))
    last = int(frame["step"].max())
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.4), sharey=True,
                             squeeze=False)
    colors = plt.get_cmap("viridis")
    layers = list(dict.fromkeys(frame["layer"]))
    for ax, name in zip(axes[0], names, strict=True):
        for i, layer in enumerate(layers):
            color = colors(i / max(len(layers) - 1, 1))
            for step, style in ((0, ":"), (last, "-")):
                rows = frame[(frame["parametrization"] == name) & (frame["layer"] == layer)
                             & (frame["step"] == step)].sort_values("width")
                ax.plot(rows["width"], rows["rms"], style, color=color, marker="o", ms=3,
                        label=(f"layer {layer}" if layer != "out" else "output")
                        if step == last else None)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("width")
        ax.set_title(f"{name}: step {last} (solid), init (dotted)", fontsize=9)
    axes[0][0].set_ylabel("RMS activation")
    axes[0][-1].legend(fontsize=7, loc="best")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def _trajectory(program, hp, data, steps: int, model):
    """Per member: mean squares (steps + 1, layers + 1) of each layer and the output."""
    batch = data.x_eval[:256]

    def sizes(params, h):
        out, q = model.forward(params, batch, program.model, h)
        return jnp.concatenate([q, jnp.mean(out ** 2)[None]])

    def member(h):
        params = engine.init_params(h, data, program)
        opt = engine.optimizer(program, h)
        _, data_key = engine.member_keys(h.seed)

        def step(carry, t):
            _, params, opt_state = engine.minibatch_step(*carry, opt, data_key, t, h, data,
                                                         program)
            return (params, opt_state), sizes(params, h)

        _, later = jax.lax.scan(step, (params, opt.init(params)), jnp.arange(steps))
        return jnp.concatenate([sizes(params, h)[None], later])

    return jax.jit(jax.vmap(member))(hp)


def add_parser(sub) -> None:
    p = sub.add_parser("coordcheck", help="activation size against width over the first "
                       "steps: is the parametrisation width-stable?",
                       description=__doc__.split("\n\n")[0],
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="mlp", help="architecture (default mlp)")
    p.add_argument("--activation", default="tanh")
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--norm", default="none")
    p.add_argument("--optimizer", default="adam")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--sigma-w2", type=float, default=1.0)
    p.add_argument("--base-width", type=int, default=32)
    p.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128, 256, 512])
    p.add_argument("--parametrizations", nargs="+", default=["standard", "mup"])
    p.add_argument("--steps", type=int, default=10, help="training steps (default 10)")
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--out", default="coordcheck.png", help="figure path (default "
                   "coordcheck.png)")
    p.add_argument("--json", action="store_true", help="print the rows and slopes as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.steps < 1:
        raise SpecError("steps", args.steps, reason="must be >= 1")
    for name in args.parametrizations:
        if name not in spec_mod.PARAMETRIZATIONS:
            raise SpecError("parametrizations", name, allowed=list(spec_mod.PARAMETRIZATIONS))
    base = spec_mod.from_dict({
        "name": "coordcheck", "arch": args.arch, "activation": args.activation,
        "depth": [args.depth], "width": [min(args.widths)], "norm": args.norm,
        "optimizer": args.optimizer, "lr": [args.lr], "sigma_w2": [args.sigma_w2],
        "base_width": args.base_width, "seeds": args.seeds, "momentum": 0.9,
        "steps": args.steps, "log_every": args.steps, "chunk_steps": args.steps,
        "batch_size": 32})
    for width in args.widths:  # every width must be valid for the arch (e.g. divisible by heads)
        spec_mod.validate(dataclasses.replace(base, width=(width,)))
    frame = measure(base, sorted(set(args.widths)), args.steps, tuple(args.parametrizations))
    slopes = width_slopes(frame, args.steps)
    path = plot(frame, Path(args.out), f"coordinate check: {args.arch} {args.activation}, "
                f"depth {args.depth}, {args.optimizer} lr {args.lr:g}")
    if args.json:
        print(json.dumps({"figure": str(path), "slopes": slopes.to_dict("records"),
                          "rows": frame.to_dict("records")}, indent=1))
        return 0
    print(f"d log(rms) / d log(width) at step {args.steps} (0 = width-stable):")
    table = slopes.pivot(index="layer", columns="parametrization", values="slope")
    print(table.reindex(columns=args.parametrizations).to_string(float_format="%+.2f"))
    print(f"figure: {path}")
    return 0
