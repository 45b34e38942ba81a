"""big_vision's MLP-Mixer (google-research/big_vision, big_vision/models/mlp_mixer.py,
Apache 2.0), as it is written there: a patch-embedding convolution, blocks that mix tokens (an
MLP across the token axis through `swapaxes`) and channels, stochastic depth, a final
LayerNorm, mean pooling and a zero-initialised head, the call returning `(logits,
intermediates)`; einops' rearrange written as the reshape it is. Only the factory at the end
is initmap's.

    initmap sweep quick --model examples/big_vision_mixer.py:mixer --model-output 0 \\
        --dataset digits --dry-run
"""

import flax.linen as nn
import jax
import jax.numpy as jnp


class MlpBlock(nn.Module):
    mlp_dim: int

    @nn.compact
    def __call__(self, x):
        y = nn.Dense(self.mlp_dim)(x)
        y = nn.gelu(y)
        return nn.Dense(x.shape[-1])(y)


class MixerBlock(nn.Module):
    """Mixer block layer."""

    tokens_mlp_dim: int
    channels_mlp_dim: int
    drop_p: float

    @nn.compact
    def __call__(self, x, *, train=False):
        y = nn.LayerNorm()(x)
        y = jnp.swapaxes(y, 1, 2)
        y = MlpBlock(self.tokens_mlp_dim, name="token_mixing")(y)
        y = jnp.swapaxes(y, 1, 2)
        x = x + y * _stoch_depth_mask(x, self.drop_p, not train, self.make_rng)
        y = nn.LayerNorm()(x)
        y = MlpBlock(self.channels_mlp_dim, name="channel_mixing")(y)
        return x + y * _stoch_depth_mask(x, self.drop_p, not train, self.make_rng)


class MlpMixer(nn.Module):
    """Mixer architecture."""

    patch_size: tuple[int, int]
    num_classes: int | None
    num_blocks: int
    hidden_dim: int
    tokens_mlp_dim: int
    channels_mlp_dim: int
    model_name: str | None = None
    stoch_depth: float = 0.0

    @nn.compact
    def __call__(self, image, *, train=False):
        out = {}
        x = out["stem"] = nn.Conv(self.hidden_dim, self.patch_size, strides=self.patch_size,
                                  name="stem")(image)
        n, h, w, c = x.shape
        x = out["input_tokens"] = x.reshape(n, h * w, c)  # "n h w c -> n (h w) c"
        for i in range(self.num_blocks):
            drop_p = (i / max(self.num_blocks - 1, 1)) * self.stoch_depth
            x = out[f"block_{i}"] = MixerBlock(self.tokens_mlp_dim, self.channels_mlp_dim,
                                               drop_p)(x, train=train)
        x = nn.LayerNorm(name="pre_head_layer_norm")(x)
        x = out["pre_logits"] = jnp.mean(x, axis=1)
        if self.num_classes:
            x = out["logits"] = nn.Dense(self.num_classes, kernel_init=nn.initializers.zeros,
                                         name="head")(x)
        return x, out


def _stoch_depth_mask(x, drop_p, deterministic, make_rng):
    if not deterministic and drop_p:
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        return 1.0 - jax.random.bernoulli(make_rng("dropout"), drop_p, shape)
    return 1.0


def mixer(depth, width, in_shape, out_dim):
    """A Mixer of `depth` blocks of width `width` on 2 × 2 patches (digits: 16 tokens), token
    MLPs of width/2 and channel MLPs of 4·width as the S/B/L variants scale them, stochastic
    depth 0.1; the logits are the first of the call's outputs (model_output = "0")."""
    return MlpMixer(patch_size=(2, 2), num_classes=out_dim, num_blocks=depth, hidden_dim=width,
                    tokens_mlp_dim=max(width // 2, 1), channels_mlp_dim=4 * width,
                    stoch_depth=0.1)
