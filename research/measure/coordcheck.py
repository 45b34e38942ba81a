"""The coordinate check's measuring pass, behind `initmap coordcheck` (research/cli/coordcheck.py;
views/coordcheck.py draws it): the size of
each layer's activations over the first training steps, across widths (Yang et al. 2022), and
how far training has moved them, |h_t − h_0|. Under μP both are flat in width; under the
standard parametrisation with Adam they grow with width (each update moves a width-n layer's
output by ~ lr·n); in a kernel regime (NTK with SGD) |h_t| is flat too but |h_t − h_0| falls
with width: the features stop learning, which |h_t| alone cannot show.

Each width is one vmapped population over seeds (padded to a multiple of the device count, as
a sweep pads), trained with the engine's own optimizer (μP's per-layer rates included) on the
member's own minibatches.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from research.networks import layers
from research.training import devices, engine, plan
from research.training import spec as spec_mod
from research.training.data import dataset_of


def measure(base: spec_mod.SweepSpec, widths: list[int], steps: int,
            parametrizations: tuple[str, ...]) -> pd.DataFrame:
    """Rows (parametrization, width, step, layer, rms, delta): the RMS over seeds and a fixed
    batch of every layer's pre-activation (or residual stream), and of the output (layer
    "out"), and the RMS of its change since init, h_t − h_0 (0 at step 0)."""
    dataset = dataset_of(base)
    rows = []
    for name in parametrizations:
        for width in widths:
            spec = spec_mod.validate(dataclasses.replace(base, width=(width,),
                                                         parametrization=(name,)))
            runs = spec_mod.expand(spec)
            # the members sharded over the devices: pad with copies of the last, then drop them
            padded = runs + runs[-1:] * (plan.ceil_to(len(runs), devices.device_count())
                                         - len(runs))
            program, hp, data = engine.place(padded, dataset)
            squares = np.asarray(jax.device_get(
                _trajectory(program, hp, data, steps, program.network)))[:len(runs)]
            sizes = np.sqrt(np.mean(squares, axis=0))  # over seeds: (2, steps + 1, layers + 1)
            for step in range(steps + 1):
                for layer in range(sizes.shape[2]):
                    label = "out" if layer == sizes.shape[2] - 1 else str(layer)
                    rows.append({"parametrization": name, "width": width, "step": step,
                                 "layer": label, "rms": float(sizes[0, step, layer]),
                                 "delta": float(sizes[1, step, layer])})
    return pd.DataFrame(rows)


def width_slopes(frame: pd.DataFrame, step: int) -> pd.DataFrame:
    """Per parametrisation and layer at `step`: d log(rms) / d log(width) (`slope`) and
    d log|h_t − h_0| / d log(width) (`delta_slope`); 0: flat in width."""
    at = frame[frame["step"] == step]
    rows = []
    for (name, layer), group in at.groupby(["parametrization", "layer"], sort=False):
        x = np.log(group["width"])
        rows.append({"parametrization": name, "layer": layer,
                     "slope": float(np.polyfit(x, np.log(group["rms"]), 1)[0]),
                     "delta_slope": float(np.polyfit(x, np.log(group["delta"]), 1)[0])})
    return pd.DataFrame(rows)


@jax.custom_batching.custom_vmap
def _moved_mean_sq(h):
    return layers.mean_sq(h)


@_moved_mean_sq.def_vmap
def _moved_rule(axis_size, in_batched, h):
    """Under a vmap over (h_0, h_t), a layer's statistic becomes (mean h_t², mean (h_t − h_0)²)."""
    if not in_batched[0]:  # the layer did not move
        return jnp.stack([layers.mean_sq(h), jnp.zeros((), jnp.float32)]), True
    return jnp.stack([layers.mean_sq(h[1]), layers.mean_sq(h[1] - h[0])]), True


def _trajectory(program, hp, data, steps: int, model):
    """Per member: mean squares (2, steps + 1, layers + 1): [0] of each layer and the output,
    [1] of their change since init."""
    batch = data.x_eval[:256]

    def sizes(params, params0, h):
        pair = jax.tree.map(lambda a, b: jnp.stack([a, b]), params0, params)
        # each layer's statistic as _moved_mean_sq makes it under this vmap over (h_0, h_t):
        # |h_t − h_0| without a type exposing its activations. custom_vmap has no derivative,
        # so only this measuring pass passes it; training keeps the mean square.
        outs, q = jax.vmap(lambda p: model.forward(p, batch, program.model, h,
                                                   stat=_moved_mean_sq))(pair)
        out0, out = outs.astype(jnp.float32)
        return jnp.stack([jnp.concatenate([q[0], jnp.mean(out ** 2)[None]]),
                          jnp.concatenate([q[1], jnp.mean((out - out0) ** 2)[None]])])

    def member(h):
        params = engine.init_params(h, data, program)
        opt = engine.optimizer(program, h)
        _, data_key = engine.member_keys(h.seed)

        def step(carry, t):
            _, new, opt_state = engine.minibatch_step(*carry, opt, data_key, t, h, data,
                                                      program)
            return (new, opt_state), sizes(new, params, h)

        _, later = jax.lax.scan(step, (params, opt.init(params)), jnp.arange(steps))
        return jnp.concatenate([sizes(params, params, h)[None], later], axis=0).swapaxes(0, 1)

    return jax.jit(jax.vmap(member))(hp)
