"""The coordinate check behind `initmap coordcheck` (research/cli/coordcheck.py): the size of
each layer's activations over the first training steps, across widths (Yang et al. 2022). Under
μP the curves are flat in width; under the standard parametrisation with Adam, the activations
after a few steps grow with width (each update moves a width-n layer's output by ~ lr·n).

Each width is one vmapped population over seeds, trained with the engine's own optimizer
(μP's per-layer rates included) on the member's own minibatches.
"""

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from research.networks import registry
from research.training import engine
from research.training import spec as spec_mod
from research.training.data import dataset_of
from research.views.report import pyplot, save_figure


def measure(base: spec_mod.SweepSpec, widths: list[int], steps: int,
            parametrizations: tuple[str, ...]) -> pd.DataFrame:
    """Rows (parametrization, width, step, layer, rms): the RMS over seeds and a fixed batch of
    every layer's pre-activation (or residual stream), and of the output (layer "out")."""
    dataset = dataset_of(base)
    rows = []
    for name in parametrizations:
        for width in widths:
            spec = spec_mod.validate(dataclasses.replace(base, width=(width,),
                                                         parametrization=(name,)))
            program, hp, data = engine.place(spec_mod.expand(spec), dataset)
            squares = np.asarray(jax.device_get(
                _trajectory(program, hp, data, steps, registry.get(program.arch))))
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
