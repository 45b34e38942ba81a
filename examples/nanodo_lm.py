"""nanodo's decoder-only Transformer (google-deepmind/nanodo, nanodo/model.py and fsdp.py,
Apache 2.0), as it is written there: a `DoConfig`, FSDP-partitioned parameters
(`nn.with_partitioning`, on by default), positions by `nn.Embed` on `arange`, pre-LN blocks of
`DenseGeneral` attention and a GELU MLP without biases, and logits read through the token
table (`embed.attend`, a tied readout). Only the factory at the end is initmap's.

    initmap sweep quick --model examples/nanodo_lm.py:lm --dataset copy --seq-len 8 \\
        --target-acc 0.5 --dry-run
"""

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
from flax import linen as nn


@dataclasses.dataclass
class DoConfig:
    """Hyper-parameters for Transformer decoder-only."""

    D: int  # model/embed dim  = qkv dim
    H: int  # num attention heads
    L: int  # max context/sequence length
    N: int  # number of transformer block layers
    V: int  # vocab size
    F: int  # FF inner dimension
    kernel_init: nn.initializers.Initializer = nn.initializers.xavier_uniform()
    embed_init: nn.initializers.Initializer = nn.initializers.variance_scaling(
        1.0, "fan_in", "normal", out_axis=0)
    dtype: jnp.dtype = jnp.float32
    fsdp_enabled: bool = True
    remat: bool = False


def fsdp_init(layer_type: str, docfg: DoConfig) -> nn.initializers.Initializer:
    """nanodo's fsdp.init: which axis of each tensor is sharded over "data"."""
    partition_fn = nn.with_partitioning if docfg.fsdp_enabled else lambda x, y: x
    if layer_type == "embedding":  # [V, D]
        return partition_fn(docfg.embed_init, (None, "data"))
    if layer_type == "attn_in_proj":  # [D, H, Dh]
        return partition_fn(docfg.kernel_init, ("data", None, None))
    if layer_type == "attn_out_proj":  # [H, Dh, D]
        return partition_fn(docfg.kernel_init, (None, None, "data"))
    if layer_type == "mlp_kernel":  # [D, F]
        return partition_fn(docfg.kernel_init, ("data", None))
    raise ValueError(f"unrecognized layer type: {layer_type}")


class TransformerDo(nn.Module):
    """Transformer decoder-only."""

    docfg: DoConfig

    def setup(self):
        cfg = self.docfg
        self.embed = nn.Embed(num_embeddings=cfg.V, features=cfg.D,
                              embedding_init=fsdp_init("embedding", cfg))
        self.pos_embed = nn.Embed(num_embeddings=cfg.L, features=cfg.D,
                                  embedding_init=fsdp_init("embedding", cfg))
        block = nn.remat(TBlock) if cfg.remat else TBlock
        self.blocks = [block(cfg) for _ in range(cfg.N)]
        self.out_ln = nn.LayerNorm(dtype=cfg.dtype, use_bias=False)

    def __call__(self, y_BxL: jax.Array):
        y_BxLxD = self.embed(y_BxL)
        y_BxLxD += self.pos_embed(jnp.arange(0, y_BxL.shape[1])[None, ...])
        for block in self.blocks:
            y_BxLxD = block(y_BxLxD)
        y_BxLxD = self.out_ln(y_BxLxD)
        logits_BxLxV = self.embed.attend(y_BxLxD.astype(jnp.float32))
        return logits_BxLxV


class Mlp(nn.Module):
    """Multilayer perceptron."""

    cfg: DoConfig

    @nn.compact
    def __call__(self, x_BxLxD: jax.Array):
        cfg = self.cfg
        linear = partial(nn.Dense, kernel_init=fsdp_init("mlp_kernel", cfg), use_bias=False,
                         dtype=cfg.dtype)
        x_BxLxF = linear(cfg.F)(x_BxLxD)
        x_BxLxF = jax.nn.gelu(x_BxLxF)
        x_BxLxD = linear(cfg.D)(x_BxLxF)
        return x_BxLxD


class TBlock(nn.Module):
    """Transformer Block."""

    docfg: DoConfig

    @nn.compact
    def __call__(self, in_BxLxD: jax.Array):
        cfg = self.docfg
        x_BxLxD = nn.LayerNorm(dtype=cfg.dtype, use_bias=False)(in_BxLxD)
        x_BxLxD = CausalAttn(cfg)(x_BxLxD)
        x_BxLxD += in_BxLxD
        z_BxLxD = nn.LayerNorm(dtype=cfg.dtype, use_bias=False)(x_BxLxD)
        z_BxLxD = Mlp(cfg)(z_BxLxD)
        return x_BxLxD + z_BxLxD


class CausalAttn(nn.Module):
    """Causal attention layer."""

    cfg: DoConfig

    @nn.compact
    def __call__(self, x_BxLxD: jax.Array):
        cfg = self.cfg
        assert cfg.D % cfg.H == 0, f"D {cfg.D} not divisible by H {cfg.H}"
        Dh = cfg.D // cfg.H
        multilinear = partial(nn.DenseGeneral, axis=-1, features=(cfg.H, Dh),
                              kernel_init=fsdp_init("attn_in_proj", cfg), use_bias=False,
                              dtype=cfg.dtype)
        q_BxLxHxDh, k_BxLxHxDh, v_BxLxHxDh = (multilinear(name="query")(x_BxLxD),
                                              multilinear(name="key")(x_BxLxD),
                                              multilinear(name="value")(x_BxLxD))
        q_BxLxHxDh /= Dh**0.5
        att_BxHxLxL = jnp.einsum("...qhd,...khd->...hqk", q_BxLxHxDh, k_BxLxHxDh)
        att_BxHxLxL = att_BxHxLxL.astype(jnp.float32)
        L = x_BxLxD.shape[1]
        mask_1x1xLxL = jnp.tril(jnp.ones((1, 1, L, L), dtype=jnp.bool_))
        _NEG_INF = jnp.finfo(cfg.dtype).min
        att_BxHxLxL = jnp.where(mask_1x1xLxL, att_BxHxLxL, _NEG_INF)
        att_BxHxLxL = jax.nn.softmax(att_BxHxLxL, axis=-1)
        att_BxHxLxL = att_BxHxLxL.astype(cfg.dtype)
        out_BxLxHxDh = jnp.einsum("...hqk,...khd->...qhd", att_BxHxLxL, v_BxLxHxDh)
        out_BxLxD = nn.DenseGeneral(features=cfg.D, name="attn_out_proj", axis=(-2, -1),
                                    kernel_init=fsdp_init("attn_out_proj", cfg), use_bias=False,
                                    dtype=cfg.dtype)(out_BxLxHxDh)
        return out_BxLxD


def lm(depth, width, in_shape, vocab, per_position):
    """`depth` blocks of width `width` (2 heads, F = 4·width) over `in_shape[0]` tokens; next-
    token logits over the vocabulary at every position (token data with per-position targets
    whose classes are the vocabulary: `copy`)."""
    assert per_position, "nanodo's LM gives logits at every position"
    return TransformerDo(DoConfig(D=width, H=2, L=in_shape[0], N=depth, V=vocab, F=4 * width))
