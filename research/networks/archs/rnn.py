"""Vanilla RNN reading MNIST-1D one sample per time step (sequence length = the input's 40):
h_t = φ(W_x x_t + W_h h_{t-1} + b), `depth` stacked layers (the first reads the signal, the
rest read the layer below; layers 2… are stacked and scanned), readout from the last layer's
final state. σ_w² scales both the input and the recurrent weights; the identity scheme sets the
recurrent matrices to √σ_w²·I (Le et al. 2015's IRNN at σ_w² = 1).

Images are read one row per step (height steps of width × channels features), as in the
row-by-row sequential MNIST of the RNN literature. Token ids are read one per step through an
embedding table (fan-in 1, `layers.embed`) in place of W_x; with per-position targets the
readout is applied to every step's state (an RNN is causal by construction)."""

import jax
import jax.numpy as jnp

from research.networks import init as init_schemes
from research.networks import layers
from research.networks.arch import Advice, Arch, Cost
from research.networks.config import Hyper, ModelConfig

Weight, Bias = init_schemes.Weight, init_schemes.Bias


def steps(cfg: ModelConfig) -> int:
    """Time steps: the signal's samples, or the image's rows."""
    return cfg.in_shape[0]


def step_features(cfg: ModelConfig) -> int:
    """Inputs per step: one sample, or one row of pixels (width × channels)."""
    return cfg.in_dim // steps(cfg)


def layout(cfg: ModelConfig) -> init_schemes.Layout:
    rest, width = cfg.depth - 1, cfg.width
    w_x = (Weight((cfg.vocab, 1, width), role="input") if cfg.vocab
           else Weight((step_features(cfg), width), role="input"))
    return {"w_x": w_x,
            "w_h": Weight((width, width), recurrent=True),
            "w_x_rest": Weight((rest, width, width)),
            "w_h_rest": Weight((rest, width, width), recurrent=True),
            "w_out": Weight((width, cfg.out_dim), role="output"),
            "b_h": Bias((width,)), "b_rest": Bias((rest, width)),
            "b_out": Bias((cfg.out_dim,), role="scalar")}


def forward(params: dict, x: jax.Array, cfg: ModelConfig, hp: Hyper,
            stat=layers.mean_sq) -> tuple[jax.Array, jax.Array]:
    """(outputs, q): q[l] layer l's mean squared pre-activation over time steps and examples."""
    net = layers.Net(cfg, hp)
    # (time, examples, features per step)
    sequence = jnp.swapaxes(x.reshape(x.shape[0], steps(cfg), step_features(cfg)), 0, 1)

    def run_layer(inputs, w_x, w_h, b, tokens=False):
        # the input's part of every step, in one matmul (an embedding lookup for token ids)
        drive = (layers.embed(net, inputs, w_x) + b.astype(net.dtype)[None, None] if tokens
                 else net.linear(inputs, w_x, b))

        def step(h, d):
            a = d + net.linear(h, w_h)
            h = net.phi(a)
            return h, (h, stat(a))

        h0 = jnp.zeros(drive.shape[1:], net.dtype)
        _, (states, q) = jax.lax.scan(step, h0, drive)
        return states, jnp.mean(q)

    if cfg.vocab:
        sequence = jnp.swapaxes(x, 0, 1)  # (time, examples) ids
    states, q_first = run_layer(sequence, params["w_x"], params["w_h"], params["b_h"],
                                tokens=bool(cfg.vocab))
    states, q_rest = jax.lax.scan(lambda s, p: run_layer(s, *p), states,
                                  (params["w_x_rest"], params["w_h_rest"], params["b_rest"]))
    q = jnp.concatenate([q_first[None], q_rest])
    if cfg.causal:  # every step's state read out: (examples, time, classes)
        n_steps, n = states.shape[:2]
        out = layers.readout(net, jnp.swapaxes(states, 0, 1).reshape(n * n_steps, -1), params)
        return out.reshape(n, n_steps, -1), q
    return layers.readout(net, states[-1], params), q  # from the last layer's final state


def weight_grad_norms(grads: dict, cfg: ModelConfig) -> jax.Array:
    """Each layer's input and recurrent weights together, then the readout."""
    return jnp.concatenate([layers.frobenius(grads["w_x"], grads["w_h"]),
                            layers.frobenius(grads["w_x_rest"], grads["w_h_rest"],
                                             stacked=True),
                            layers.frobenius(grads["w_out"])])


def unit_diversity(params: dict, cfg: ModelConfig) -> jax.Array:
    """Units of the first layer: their incoming input and recurrent weights."""
    w_x = params["w_x"]
    return layers.unit_diversity(jnp.concatenate([w_x.reshape(-1, w_x.shape[-1]),
                                                  params["w_h"]]))


def cost(cfg: ModelConfig) -> Cost:
    return Cost(positions=steps(cfg), kept_per_layer=1)  # every weight at every time step


ARCH = Arch(
    name="rnn", summary="vanilla RNN reading the signal one sample (an image one row) per step",
    layout=layout,
    forward=forward, weight_grad_norms=weight_grad_norms, unit_diversity=unit_diversity,
    cost=cost, inits=("identity",), depth_label="layers", figure_label=", {init} init",
    mnist1d_reference=("GRU", 91.0),
    advice=Advice(theory_depth="time", recurrent=True,
                  note="theory's depth = the sequence length (time steps unrolled); --depth "
                       "counts stacked layers, as in sweeps",
                  caveat="rnn: the σ_w² is for Gaussian recurrent weights; an orthogonal "
                         "recurrence is a little more chaotic at the same σ_w² (a simulation "
                         "of both: docs/recommend.md)"))
