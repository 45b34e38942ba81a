"""big_vision's ViT (google-research/big_vision, big_vision/models/vit.py, Apache 2.0), as it
is written there: a patch-embedding convolution, a learned position table (`self.param`
added to the tokens), pre-LN encoder blocks of attention and an MLP (xavier-uniform kernels,
N(0, 1e-6) biases) run as one `nn.scan` over `nn.remat` blocks, global average pooling and a
zero-initialised head, the call returning `(logits, intermediates)`. Checkpoint loading and
the non-"learn"/"gap" options are left out. Only the factory at the end is initmap's.

    initmap sweep quick --model examples/big_vision_vit.py:vit --model-output 0 \\
        --dataset digits --dry-run
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def get_posemb(self, typ, seqshape, width, name, dtype=jnp.float32):
    if typ == "learn":
        return self.param(name, nn.initializers.normal(stddev=1 / np.sqrt(width)),
                          (1, np.prod(seqshape), width), dtype)
    raise ValueError(f"Unknown posemb type: {typ}")


class MlpBlock(nn.Module):
    """Transformer MLP / feed-forward block."""

    mlp_dim: int | None = None  # Defaults to 4x input dim
    dropout: float = 0.0
    dtype_mm: str = "float32"

    @nn.compact
    def __call__(self, x, deterministic=True):
        inits = dict(kernel_init=nn.initializers.xavier_uniform(),
                     bias_init=nn.initializers.normal(stddev=1e-6))
        d = x.shape[-1]
        x = nn.Dense(self.mlp_dim or 4 * d, dtype=self.dtype_mm, **inits)(x)
        x = nn.with_logical_constraint(x, ("act_batch", "act_len", "act_emb"))
        x = nn.gelu(x)
        x = nn.Dropout(rate=self.dropout)(x, deterministic)
        x = nn.Dense(d, dtype=self.dtype_mm, **inits)(x)
        return x


class Encoder1DBlock(nn.Module):
    """Single transformer encoder block (MHSA + MLP)."""

    mlp_dim: int | None = None
    num_heads: int = 12
    dropout: float = 0.0
    dtype_mm: str = "float32"

    @nn.compact
    def __call__(self, x, deterministic=True):
        out = {}
        x = nn.with_logical_constraint(x, ("act_batch", "act_len", "act_emb"))
        y = nn.LayerNorm()(x)
        y = out["sa"] = nn.MultiHeadDotProductAttention(
            num_heads=self.num_heads, kernel_init=nn.initializers.xavier_uniform(),
            deterministic=deterministic, dtype=self.dtype_mm)(y, y)
        y = nn.with_logical_constraint(y, ("act_batch", "act_len", "act_emb"))
        y = nn.Dropout(rate=self.dropout)(y, deterministic)
        x = out["+sa"] = x + y
        y = nn.LayerNorm()(x)
        y = out["mlp"] = MlpBlock(mlp_dim=self.mlp_dim, dropout=self.dropout,
                                  dtype_mm=self.dtype_mm)(y, deterministic)
        y = nn.with_logical_constraint(y, ("act_batch", "act_len", "act_emb"))
        y = nn.Dropout(rate=self.dropout)(y, deterministic)
        x = out["+mlp"] = x + y
        x = nn.with_logical_constraint(x, ("act_batch", "act_len", "act_emb"))
        return x, out


class Encoder(nn.Module):
    """Transformer Model Encoder for sequence to sequence translation."""

    depth: int
    mlp_dim: int | None = None
    num_heads: int = 12
    dropout: float = 0.0
    scan: bool = False
    remat_policy: str = "nothing_saveable"
    dtype_mm: str = "float32"

    @nn.compact
    def __call__(self, x, deterministic=True):
        out = {}
        if self.scan:
            block = nn.remat(Encoder1DBlock, prevent_cse=False,
                             static_argnums=(2,),  # 0=self, 2=deterministic
                             policy=getattr(jax.checkpoint_policies, self.remat_policy, None))
            x, scan_out = nn.scan(
                block, variable_axes={"params": 0},
                split_rngs={"params": True, "dropout": True}, in_axes=nn.broadcast,
                length=self.depth)(name="encoderblock", dtype_mm=self.dtype_mm,
                                   mlp_dim=self.mlp_dim, num_heads=self.num_heads,
                                   dropout=self.dropout)(x, deterministic)
            for lyr in range(self.depth):
                out[f"block{lyr:02d}"] = jax.tree.map(lambda o, ly=lyr: o[ly], scan_out)
        else:
            for lyr in range(self.depth):
                block_cur = Encoder1DBlock(name=f"encoderblock_{lyr}", dtype_mm=self.dtype_mm,
                                           mlp_dim=self.mlp_dim, num_heads=self.num_heads,
                                           dropout=self.dropout)
                x, out[f"block{lyr:02d}"] = block_cur(x, deterministic)
            out["pre_ln"] = x
        return nn.LayerNorm(name="encoder_norm")(x), out


class _Model(nn.Module):
    """ViT model."""

    num_classes: int | None = None
    patch_size: Sequence[int] = (16, 16)
    width: int = 768
    depth: int = 12
    mlp_dim: int | None = None
    num_heads: int = 12
    posemb: str = "learn"
    dropout: float = 0.0
    pool_type: str = "gap"
    head_zeroinit: bool = True
    scan: bool = False
    remat_policy: str = "nothing_saveable"
    dtype_mm: str = "float32"

    @nn.compact
    def __call__(self, image, *, train=False):
        out = {}
        image = jnp.asarray(image, self.dtype_mm)
        x = out["stem"] = nn.Conv(self.width, self.patch_size, strides=self.patch_size,
                                  padding="VALID", name="embedding", dtype=self.dtype_mm)(image)
        n, h, w, c = x.shape
        x = jnp.reshape(x, [n, h * w, c])
        x = out["with_posemb"] = x + get_posemb(self, self.posemb, (h, w), c, "pos_embedding",
                                                x.dtype)
        x = nn.Dropout(rate=self.dropout)(x, not train)
        x, out["encoder"] = Encoder(depth=self.depth, mlp_dim=self.mlp_dim,
                                    num_heads=self.num_heads, dropout=self.dropout,
                                    scan=self.scan, remat_policy=self.remat_policy,
                                    dtype_mm=self.dtype_mm, name="Transformer")(
            x, deterministic=not train)
        encoded = out["encoded"] = x
        x = out["head_input"] = jnp.mean(x, axis=1)  # pool_type "gap"
        x_2d = jnp.reshape(encoded, [n, h, w, -1])
        out["pre_logits_2d"] = x_2d
        out["pre_logits"] = x
        if self.num_classes:
            kw = {"kernel_init": nn.initializers.zeros} if self.head_zeroinit else {}
            head = nn.Dense(self.num_classes, name="head", **kw)
            x_2d = out["logits_2d"] = head(x_2d)
            x = out["logits"] = head(x)
        return x, out


def vit(depth, width, in_shape, out_dim):
    """A ViT of `depth` scanned, rematerialised blocks of width `width` (2 heads, mlp
    4·width) on 2 × 2 patches of (height, width, channels) images (digits: 16 tokens); the
    logits are the first of the call's two outputs (model_output = "0")."""
    return _Model(num_classes=out_dim, patch_size=(2, 2), width=width, depth=depth,
                  num_heads=2, scan=True)
