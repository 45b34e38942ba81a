"""Residual MLP: an input layer, then `depth` blocks h ← h + α·F(h) scanned, then a readout.

F is one or two dense layers on the activated (and, with norm = pre_ln, layer-normed) stream:
F(h) = W₁φ(n(h)) + b₁, or F(h) = W₂φ(W₁φ(n(h)) + b₁) + b₂ (Yang & Schoenholz 2017's reduced
and full residual nets); images are flattened. α comes from `residual` (see
layers.branch_gates). The ResNet (`resnet.py`) is the same network with convolutions and a
global average pool; its norm = batchnorm is the pre-activation ResNet's (He et al. 2016),
BatchNorm before every φ: F(h) = W₂φ(BN(W₁φ(BN(h)) + b₁)) + b₂, and φ(BN(h)) into the pool.
"""

import jax
import jax.numpy as jnp

from research.networks import init as init_schemes
from research.networks import layers
from research.networks.arch import RESIDUAL_OPTIONS, Advice, Arch, Cost
from research.networks.config import Hyper, ModelConfig

Weight, Bias, Const = init_schemes.Weight, init_schemes.Bias, init_schemes.Const


def layout(cfg: ModelConfig, conv: bool = False) -> init_schemes.Layout:
    blocks, width = cfg.depth, cfg.width
    kernel = (cfg.kernel_size,) * cfg.spatial if conv else ()
    s = cfg.spatial if conv else 1
    fixup = cfg.residual == "fixup"
    two = cfg.branch_layers == 2
    first = (*kernel, cfg.channels, width) if conv else (cfg.in_dim, width)
    lay = {"w_in": Weight(first, role="input", conv=conv, spatial=s),
           # Fixup: the branch's first layer scaled by L^(-1/(2m-2)), its last layer zero.
           "w_b1": Weight((blocks, *kernel, width, width), conv=conv, spatial=s,
                          gain=layers.fixup_gain(cfg, blocks)),
           "w_out": Weight((width, cfg.out_dim), role="output", zero=fixup)}
    if two:
        lay["w_b2"] = Weight((blocks, *kernel, width, width), conv=conv, spatial=s, zero=fixup)
    lay.update({"b_in": Bias((width,)), "b_b1": Bias((blocks, width))})
    if two:  # Fixup's branch ends in zero weights and a zero bias: it starts as exactly 0
        lay["b_b2"] = Const((blocks, width), 0.0, "input") if fixup else Bias((blocks, width))
    lay["b_out"] = Bias((cfg.out_dim,), role="scalar")
    if cfg.residual == "skipinit":
        lay["alpha"] = Const((blocks,), 0.0)
    return lay


def forward(params: dict, x: jax.Array, cfg: ModelConfig, hp: Hyper,
            stat=layers.mean_sq) -> tuple[jax.Array, jax.Array]:
    """(outputs, q): q[0] the stream's mean square after the input layer, q[l] after block l."""
    net = layers.Net(cfg, hp)
    conv = params["w_in"].ndim >= 3
    norm = {"pre_ln": layers.layer_norm, "batchnorm": layers.batch_norm}.get(cfg.norm,
                                                                           lambda h: h)
    # BatchNorm sits before every φ (pre-activation ResNet); layer norm only on the stream
    inner = layers.batch_norm if cfg.norm == "batchnorm" else (lambda u: u)
    h = net.linear(layers.network_input(x, cfg, conv), params["w_in"], params["b_in"])
    gates = layers.branch_gates(params, hp, cfg, cfg.depth)
    branch = [params["w_b1"], params["b_b1"]]
    if "w_b2" in params:
        branch += [params["w_b2"], params["b_b2"]]

    def block(h, p):
        alpha, w1, b1, *second = p
        u = net.linear(net.phi(norm(h)), w1, b1)
        if second:
            u = net.linear(net.phi(inner(u)), *second)
        h = h + alpha.astype(h.dtype) * u
        return h, stat(h)

    q_first = stat(h)
    h, q_rest = jax.lax.scan(block, h, (gates, *branch))
    out = layers.readout(net, net.phi(norm(h)), params)
    return out, jnp.concatenate([q_first[None], q_rest])


def weight_grad_norms(grads: dict, cfg: ModelConfig) -> jax.Array:
    """Input layer, each block's branch weights together, readout."""
    branch = [grads["w_b1"]] + ([grads["w_b2"]] if "w_b2" in grads else [])
    return jnp.concatenate([layers.frobenius(grads["w_in"]),
                            layers.frobenius(*branch, stacked=True),
                            layers.frobenius(grads["w_out"])])


def unit_diversity(params: dict, cfg: ModelConfig) -> jax.Array:
    return layers.unit_diversity(params["w_in"])


def cost(cfg: ModelConfig) -> Cost:
    # A block keeps its branch's activations beside the stream.
    return Cost(positions=1, kept_per_layer=cfg.branch_layers + 1)


ARCH = Arch(
    name="resmlp", summary="h ← h + α·F(h), F one or two dense layers", layout=layout,
    forward=forward, weight_grad_norms=weight_grad_norms, unit_diversity=unit_diversity,
    cost=cost, options=RESIDUAL_OPTIONS, norms=("none", "pre_ln"),
    advice=Advice(theory_depth="none"), figure_label=", α: {residual}",
    typical={"norm": "pre_ln"})
