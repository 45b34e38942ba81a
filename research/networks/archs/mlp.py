"""Fully connected network (images flattened): input layer, (depth - 1) identical hidden
layers scanned, readout.

On token ids (one answer per sequence: mod-add, parity) the input layer is the dense layer on
the sequence's one-hot vectors concatenated: position t reads row x_t of its own table, the
rows summed. Its fan-in is the sequence length (the inputs that are 1), so the first hidden
pre-activation has variance σ_w² + σ_b², as a dense layer's on unit-variance features.

`depth` counts hidden layers (each followed by the activation). The repeated layers are stacked
along a leading axis and run with `lax.scan`, so compile time does not grow with depth. The CNN
(`cnn.py`) is this network with convolutions and a global average pool: it reuses `forward`.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from research.common.errors import SpecError
from research.networks import init as init_schemes
from research.networks import layers, parametrization
from research.networks.arch import Arch, Cost, Pad
from research.networks.config import Hyper, ModelConfig

Weight, Bias = init_schemes.Weight, init_schemes.Bias


def layout(cfg: ModelConfig) -> init_schemes.Layout:
    hidden, width = cfg.depth - 1, cfg.width
    # token ids: one table per position, (vocab, seq, width): fan-in seq (`_first_layer`)
    w_in = (Weight((cfg.vocab, cfg.in_dim, width), role="input") if cfg.vocab
            else Weight((cfg.in_dim, width), role="input"))
    return {"w_in": w_in,
            "w_hidden": Weight((hidden, width, width)),
            "w_out": Weight((width, cfg.out_dim), role="output"),
            "b_in": Bias((width,)), "b_hidden": Bias((hidden, width)),
            "b_out": Bias((cfg.out_dim,), role="scalar")}


def forward(params: dict, x: jax.Array, cfg: ModelConfig, hp: Hyper,
            stat=layers.mean_sq) -> tuple[jax.Array, jax.Array]:
    """(outputs, q) where q[l] is the mean squared pre-activation of hidden layer l + 1.
    Convolutional kernels make it a CNN over the input as a 1-channel signal (or, for 2-D
    data, an image); a dense first layer takes images flattened."""
    net = layers.Net(cfg, hp)
    h = _first_layer(net, x, params, cfg)
    q_first = stat(h)
    h, q_rest = _hidden_stack(net, h, params, cfg, hp, stat)
    return layers.readout(net, net.phi(h), params), jnp.concatenate([q_first[None], q_rest])


def _first_layer(net: layers.Net, x: jax.Array, params: dict, cfg: ModelConfig) -> jax.Array:
    """The input layer's pre-activation: dense (or convolutional) on features, or on token
    ids the dense layer on their one-hot vectors, read as table rows."""
    if cfg.vocab:
        rows = params["w_in"][x, jnp.arange(x.shape[1])].astype(net.dtype)  # (n, seq, width)
        scale = parametrization.forward_scale(x.shape[1], cfg, net.hp.sigma_w2)
        return jnp.sum(rows, axis=1) * scale + params["b_in"].astype(net.dtype)[None]
    conv = params["w_in"].ndim >= 3
    return net.linear(layers.network_input(x, cfg, conv), params["w_in"], params["b_in"])


def _hidden_stack(net: layers.Net, h: jax.Array, params: dict, cfg: ModelConfig, hp: Hyper,
                  per_layer=lambda h: None):
    """The scanned hidden layers from the first hidden pre-activation h: (the last one, each
    layer's `per_layer`). In a padded program (pad_depth) hidden layer l runs only for
    l < hp.depth − 1 and is the identity after: the member's own network exactly, its masked
    layers getting zero gradients (and a Jacobian of I). hp.depth is the population's, shared
    by its members (not batched), so the layer is a branch not taken: a shallow population in
    a deep program computes its own layers only."""
    stack = (params["w_hidden"], params["b_hidden"])

    def layer(h, xs):
        if cfg.padded:
            l, wb = xs
            h_next = jax.lax.cond(l < hp.depth - 1, lambda h: net.linear(net.phi(h), *wb),
                                  lambda h: h, h)
        else:
            h_next = net.linear(net.phi(h), *xs)
        return h_next, per_layer(h_next)

    if cfg.padded:
        stack = (jnp.arange(cfg.depth - 1), stack)
    return jax.lax.scan(layer, h, stack)


def stack_jacobian(params: dict, x: jax.Array, cfg: ModelConfig, hp: Hyper) -> jax.Array:
    """J = ∂h^L/∂h^1 for one example x: the Jacobian of the scanned hidden layers, from the
    first hidden pre-activation to the last, (n, n) in float32 with n = width, or for a CNN
    n = positions × channels (each conv layer, circular or same padding, maps that space to
    itself; row-major over (positions, channel)). Forward mode: n tangents through the stack,
    n² · (kernel taps) multiply-adds a conv layer, width³ a dense one; the identity at depth 1.
    In float32 whatever the compute dtype: it describes the parameters, not bfloat16's
    rounding."""
    net = layers.Net(dataclasses.replace(cfg, compute_dtype="float32"), hp)
    h1 = _first_layer(net, x[None], params, cfg)

    def stack(flat):
        return _hidden_stack(net, flat.reshape(h1.shape), params, cfg, hp)[0].reshape(-1)

    return jax.jacfwd(stack)(h1.reshape(-1))


def weight_grad_norms(grads: dict, cfg: ModelConfig) -> jax.Array:
    """Frobenius norm of each weight matrix's gradient, input layer to readout."""
    return jnp.concatenate([layers.frobenius(grads["w_in"]),
                            layers.frobenius(grads["w_hidden"], stacked=True),
                            layers.frobenius(grads["w_out"])])


def unit_diversity(params: dict, cfg: ModelConfig) -> jax.Array:
    """How different the first hidden layer's units are (see layers.unit_diversity)."""
    return layers.unit_diversity(params["w_in"])


def trim_padded(diagnostics: dict, depth: int) -> dict:
    """A padded network's per-layer init diagnostics cut to a depth-`depth` member's own:
    q of the input layer and its depth − 1 hidden layers; the weight-gradient norms of the
    input layer, those hidden layers and the readout (the last entry)."""
    q, grads = diagnostics["init_q"], diagnostics["init_grad_norm"]
    return {**diagnostics, "init_q": q[:depth],
            "init_grad_norm": np.concatenate([grads[:depth], grads[-1:]])}


PAD = Pad(stacked=("w_hidden", "b_hidden"), trim=trim_padded)


def check_data(spec, configs: list[ModelConfig]) -> tuple[str, ...]:
    if any(cfg.causal for cfg in configs):
        raise SpecError("arch", "mlp", reason="reads a whole sequence at once, so it takes no "
                        "per-position (next-token) targets; use transformer or rnn")
    return ()


def lsuv_layers(cfg: ModelConfig) -> int:
    return cfg.depth


def cost(cfg: ModelConfig) -> Cost:
    return Cost(positions=1, kept_per_layer=1)


ARCH = Arch(
    name="mlp", summary="fully connected", layout=layout, forward=forward,
    weight_grad_norms=weight_grad_norms, unit_diversity=unit_diversity, cost=cost,
    inits=("lsuv",), lsuv_layers=lsuv_layers, scale_layer=layers.scale_plain_layer,
    mnist1d_reference=("MLP", 68.0), jacobian=stack_jacobian, pad=PAD, check_data=check_data)
