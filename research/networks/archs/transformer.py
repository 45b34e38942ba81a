"""A small encoder over MNIST-1D as a token sequence: the signal cut into patches of
`patch_size` samples (zero-padded to a whole number), each patch embedded (plus a learned
position embedding) into width = model dimension; `depth` blocks of multi-head self-attention
and an MLP (4 × width, cfg.activation), each a residual branch with gate α; mean over tokens;
dense readout.

norm: pre_ln  h ← h + α·A(LN h);  h ← h + α·M(LN h);  LN before the readout
      post_ln h ← LN(h + α·A(h));  h ← LN(h + α·M(h))
      none    h ← h + α·A(h);      h ← h + α·M(h)
Position embeddings are drawn like biases (variance σ_b²). Images are cut into patch_size ×
patch_size patches (zero-padded to whole patches, all channels), row by row, as in a ViT.
"""

import math

import jax
import jax.numpy as jnp

from research.common.errors import SpecError
from research.networks import init as init_schemes
from research.networks import layers, parametrization
from research.networks.arch import RESIDUAL_OPTIONS, Advice, Arch, Cost
from research.networks.config import Hyper, ModelConfig

Weight, Bias, Const = init_schemes.Weight, init_schemes.Bias, init_schemes.Const
MLP_RATIO = 4


def tokens(cfg: ModelConfig) -> int:
    if cfg.vocab:  # token data: one position per id
        return cfg.in_shape[0]
    return math.prod(-(-side // cfg.patch_size) for side in cfg.grid)


def patch_features(cfg: ModelConfig) -> int:
    return cfg.patch_size ** cfg.spatial * cfg.channels


def patches(x: jax.Array, cfg: ModelConfig) -> jax.Array:
    """(n, tokens, patch features): the signal's consecutive patches, or the image's
    patch × patch squares in row-major order, each flattened (rows, columns, channels)."""
    n, p = x.shape[0], cfg.patch_size
    if not cfg.image:
        padded = jnp.pad(x, ((0, 0), (0, tokens(cfg) * p - x.shape[1])))
        return padded.reshape(n, tokens(cfg), p)
    rows, cols = (-(-side // p) for side in cfg.grid)
    padded = jnp.pad(x, ((0, 0), (0, rows * p - x.shape[1]), (0, cols * p - x.shape[2]), (0, 0)))
    squares = padded.reshape(n, rows, p, cols, p, cfg.channels).transpose(0, 1, 3, 2, 4, 5)
    return squares.reshape(n, rows * cols, patch_features(cfg))


def layout(cfg: ModelConfig) -> init_schemes.Layout:
    blocks, width, hidden = cfg.depth, cfg.width, MLP_RATIO * cfg.width
    fixup = cfg.residual == "fixup"
    gain = layers.fixup_gain(cfg, blocks)
    square = (blocks, width, width)
    # token data: an embedding table, fan-in 1 (`layers.embed`), and no embedding bias
    embedding = (Weight((cfg.vocab, 1, width), role="input") if cfg.vocab
                 else Weight((patch_features(cfg), width), role="input"))
    lay = {"w_embed": embedding,
           "w_q": Weight(square, gain=gain), "w_k": Weight(square, gain=gain),
           "w_v": Weight(square, gain=gain), "w_o": Weight(square, zero=fixup),
           "w_1": Weight((blocks, width, hidden), gain=gain),
           "w_2": Weight((blocks, hidden, width), zero=fixup),
           "w_out": Weight((width, cfg.out_dim), role="output", zero=fixup),
           "b_embed": Bias((width,)), "pos": Bias((tokens(cfg), width)),
           "b_1": Bias((blocks, hidden)),
           "b_2": Const((blocks, width), 0.0, "input") if fixup else Bias((blocks, width)),
           "b_out": Bias((cfg.out_dim,), role="scalar")}
    if cfg.residual == "skipinit":
        lay["alpha"] = Const((blocks,), 0.0)
    if cfg.vocab:
        del lay["b_embed"]
    return lay


def forward(params: dict, x: jax.Array, cfg: ModelConfig, hp: Hyper,
            stat=layers.mean_sq) -> tuple[jax.Array, jax.Array]:
    """(outputs, q): q[0] the mean square of the embedded tokens, q[l] after block l."""
    net = layers.Net(cfg, hp)
    n, n_tokens, width, heads = x.shape[0], tokens(cfg), cfg.width, cfg.heads
    head_dim = width // heads
    if cfg.vocab:
        h = layers.embed(net, x, params["w_embed"])
    else:
        h = net.linear(patches(x, cfg), params["w_embed"], params["b_embed"])
    h = h + params["pos"].astype(net.dtype)[None]
    # per-position targets: position t attends to positions <= t only
    causal = jnp.tril(jnp.ones((n_tokens, n_tokens), bool)) if cfg.causal else None
    scale = parametrization.attention_scale(head_dim, cfg)

    def attention(h, wq, wk, wv, wo):
        q, k, v = (net.linear(h, w).reshape(n, n_tokens, heads, head_dim) for w in (wq, wk, wv))
        logits = jnp.einsum("nthd,nshd->nhts", q, k).astype(jnp.float32) * scale
        if causal is not None:
            logits = jnp.where(causal, logits, -jnp.inf)
        weights = jax.nn.softmax(logits, axis=-1).astype(net.dtype)
        mixed = jnp.einsum("nhts,nshd->nthd", weights, v).reshape(n, n_tokens, width)
        return net.linear(mixed, wo)

    def mlp(h, w1, b1, w2, b2):
        return net.linear(net.phi(net.linear(h, w1, b1)), w2, b2)

    def block(h, p):
        alpha, wq, wk, wv, wo, w1, b1, w2, b2 = p
        alpha = alpha.astype(h.dtype)
        if cfg.norm == "pre_ln":
            h = h + alpha * attention(layers.layer_norm(h), wq, wk, wv, wo)
            h = h + alpha * mlp(layers.layer_norm(h), w1, b1, w2, b2)
        elif cfg.norm == "post_ln":
            h = layers.layer_norm(h + alpha * attention(h, wq, wk, wv, wo))
            h = layers.layer_norm(h + alpha * mlp(h, w1, b1, w2, b2))
        else:
            h = h + alpha * attention(h, wq, wk, wv, wo)
            h = h + alpha * mlp(h, w1, b1, w2, b2)
        return h, stat(h)

    q_first = stat(h)
    stacked = tuple(params[name] for name in ("w_q", "w_k", "w_v", "w_o", "w_1", "b_1", "w_2",
                                              "b_2"))
    gates = layers.branch_gates(params, hp, cfg, cfg.depth)
    h, q_rest = jax.lax.scan(block, h, (gates, *stacked))
    if cfg.norm == "pre_ln":
        h = layers.layer_norm(h)
    q = jnp.concatenate([q_first[None], q_rest])
    if cfg.causal:  # the readout at every position
        return layers.readout(net, h.reshape(n * n_tokens, width), params).reshape(
            n, n_tokens, -1), q
    if cfg.vocab:  # one answer per sequence: read at its last position (`=` in mod-add)
        return layers.readout(net, h[:, -1], params), q
    # mean over tokens, then the readout
    return layers.readout(net, h, params), q


def weight_grad_norms(grads: dict, cfg: ModelConfig) -> jax.Array:
    """Embedding, each block's weights together, readout."""
    block = [grads[name] for name in ("w_q", "w_k", "w_v", "w_o", "w_1", "w_2")]
    return jnp.concatenate([layers.frobenius(grads["w_embed"]),
                            layers.frobenius(*block, stacked=True),
                            layers.frobenius(grads["w_out"])])


def unit_diversity(params: dict, cfg: ModelConfig) -> jax.Array:
    return layers.unit_diversity(params["w_embed"])


def cost(cfg: ModelConfig) -> Cost:
    # Every weight at every token; a block keeps its attention maps; attention itself is
    # tokens² × width multiply-adds per block, twice (scores and mixing).
    n = tokens(cfg)
    return Cost(positions=n, kept_per_layer=3 + cfg.heads * n // cfg.width,
                extra_macs=float(n ** 2 * cfg.width * cfg.depth * 2))


def check_heads(spec) -> None:
    if any(w % spec.heads for w in spec.width):
        raise SpecError("heads", spec.heads, reason=f"must divide every width {list(spec.width)}")


ARCH = Arch(
    name="transformer", summary="encoder over patches of the signal (or image) as tokens",
    layout=layout,
    forward=forward, weight_grad_norms=weight_grad_norms, unit_diversity=unit_diversity,
    cost=cost, options=(*RESIDUAL_OPTIONS, "patch_size", "heads"),
    norms=("none", "pre_ln", "post_ln"), check=check_heads, figure_label=", {norm}",
    typical={"norm": "pre_ln", "activation": "gelu"},
    advice=Advice(theory_depth="none", branches_per_block=2, typical_std=0.02,
                  linear_inputs=("w_q", "w_k", "w_v", "w_o", "w_1"),
                  caveat="attention and LayerNorm are outside this mean-field theory: the "
                         "per-tensor σ_w² follows from what each weight reads, and the "
                         "stream's growth is measured, not derived"))
