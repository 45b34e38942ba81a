"""Flax's lm1b Transformer language model (google/flax, examples/lm1b/models.py, Apache 2.0),
as it is written there: a `TransformerConfig`, logically partitioned parameters
(`nn.with_logical_partitioning`) on every kernel, bias and norm, a learned position table as a
raw `self.param` added to the embeddings, inputs shifted right inside the model, post-attention
residual blocks, and logits through the token table (`logits_via_embedding`, a tied readout)
or a dense head. The autoregressive decoding cache (`decode`) is left out: initmap trains, it
does not sample. Only the factories at the end are initmap's.

    initmap sweep quick --model examples/lm1b.py:lm --dataset copy --seq-len 8 \\
        --target-acc 0.5 --dry-run
"""

from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
from flax import linen as nn
from flax import struct
from jax import lax


@struct.dataclass
class TransformerConfig:
    """Global hyperparameters used to minimize obnoxious kwarg plumbing."""

    vocab_size: int
    output_vocab_size: int
    logits_via_embedding: bool = False
    dtype: Any = jnp.float32
    emb_dim: int = 512
    num_heads: int = 8
    num_layers: int = 6
    qkv_dim: int = 512
    mlp_dim: int = 2048
    max_len: int = 2048
    dropout_rate: float = 0.1
    attention_dropout_rate: float = 0.1
    deterministic: bool = False
    kernel_init: Callable = nn.initializers.xavier_uniform()
    bias_init: Callable = nn.initializers.normal(stddev=1e-6)
    posemb_init: Callable | None = None


def shift_right(x, axis=1):
    """Shift the input to the right by padding and slicing on axis."""
    pad_widths = [(0, 0)] * len(x.shape)
    pad_widths[axis] = (1, 0)
    padded = jnp.pad(x, pad_widths, mode="constant", constant_values=x.dtype.type(0))
    return lax.dynamic_slice_in_dim(padded, 0, padded.shape[axis] - 1, axis)


class AddPositionEmbs(nn.Module):
    """Adds learned positional embeddings to the inputs (lm1b's, with posemb_init given)."""

    config: TransformerConfig

    @nn.compact
    def __call__(self, inputs):
        config = self.config
        length = inputs.shape[1]
        pos_emb_shape = (1, config.max_len, inputs.shape[-1])
        pos_embedding = self.param("pos_embedding", config.posemb_init, pos_emb_shape)
        return inputs + pos_embedding[:, :length, :]


class MlpBlock(nn.Module):
    """Transformer MLP / feed-forward block."""

    config: TransformerConfig

    @nn.compact
    def __call__(self, inputs):
        config = self.config
        x = nn.Dense(config.mlp_dim, dtype=config.dtype,
                     kernel_init=nn.with_logical_partitioning(config.kernel_init,
                                                              ("embed", "mlp")),
                     bias_init=nn.with_logical_partitioning(config.bias_init, ("mlp",)))(inputs)
        x = nn.relu(x)
        x = nn.Dropout(rate=config.dropout_rate)(x, deterministic=config.deterministic)
        output = nn.Dense(inputs.shape[-1], dtype=config.dtype,
                          kernel_init=nn.with_logical_partitioning(config.kernel_init,
                                                                   ("mlp", "embed")),
                          bias_init=nn.with_logical_partitioning(config.bias_init,
                                                                 ("embed",)))(x)
        return nn.Dropout(rate=config.dropout_rate)(output, deterministic=config.deterministic)


def _layer_norm(config, name=None):
    return nn.LayerNorm(dtype=config.dtype, name=name,
                        bias_init=nn.with_logical_partitioning(nn.initializers.zeros,
                                                               ("embed",)),
                        scale_init=nn.with_logical_partitioning(nn.initializers.ones,
                                                                ("embed",)))


class EncoderDecoder1DBlock(nn.Module):
    """Transformer decoder layer."""

    config: TransformerConfig

    @nn.compact
    def __call__(self, inputs, decoder_mask=None):
        config = self.config
        x = _layer_norm(config)(inputs)
        x = nn.MultiHeadDotProductAttention(
            num_heads=config.num_heads, dtype=config.dtype, qkv_features=config.qkv_dim,
            kernel_init=nn.with_logical_partitioning(config.kernel_init, ("embed", "kv")),
            bias_init=nn.with_logical_partitioning(config.bias_init, ("embed",)),
            use_bias=False, broadcast_dropout=False,
            dropout_rate=config.attention_dropout_rate,
            deterministic=config.deterministic)(x, mask=decoder_mask)
        x = nn.Dropout(rate=config.dropout_rate)(x, deterministic=config.deterministic)
        x = x + inputs
        z = _layer_norm(config)(x)
        z = MlpBlock(config=config)(z)
        return x + z


class Decoder(nn.Module):
    """Transformer decoder."""

    config: TransformerConfig

    @nn.compact
    def __call__(self, inputs, decoder_mask=None):
        config = self.config
        output_embed = nn.Embed(
            num_embeddings=config.output_vocab_size, features=config.emb_dim,
            embedding_init=nn.with_logical_partitioning(nn.initializers.normal(stddev=1.0),
                                                        ("vocab", "embed")))
        y = inputs.astype("int32")
        y = shift_right(y)
        y = output_embed(y)
        y = AddPositionEmbs(config=config, name="posembed_output")(y)
        y = nn.Dropout(rate=config.dropout_rate)(y, deterministic=config.deterministic)
        y = y.astype(config.dtype)
        for lyr in range(config.num_layers):
            y = EncoderDecoder1DBlock(config=config, name=f"encoderdecoderblock_{lyr}")(
                y, decoder_mask=decoder_mask)
        y = _layer_norm(config, name="encoderdecoder_norm")(y)
        if config.logits_via_embedding:
            # Use the transpose of embedding matrix for logit transform.
            logits = output_embed.attend(y.astype(jnp.float32))
            # Correctly normalize pre-softmax logits for this shared case.
            logits = logits / jnp.sqrt(y.shape[-1])
        else:
            logits = nn.Dense(
                config.output_vocab_size, dtype=config.dtype,
                kernel_init=nn.with_logical_partitioning(config.kernel_init,
                                                         ("embed", "vocab")),
                bias_init=nn.with_logical_partitioning(config.bias_init, ("vocab",)),
                name="logitdense")(y)
        return logits


class TransformerLM(nn.Module):
    """Transformer pure decoder stack for language modelling."""

    config: TransformerConfig

    @nn.compact
    def __call__(self, inputs):
        config = self.config
        decoder_mask = nn.combine_masks(nn.make_attention_mask(inputs > 0, inputs > 0),
                                        nn.make_causal_mask(inputs))
        return Decoder(config=config, name="decoder")(inputs, decoder_mask=decoder_mask)


def _config(depth, width, in_shape, vocab, tied):
    return TransformerConfig(
        vocab_size=vocab, output_vocab_size=vocab, logits_via_embedding=tied, emb_dim=width,
        num_heads=2, num_layers=depth, qkv_dim=width, mlp_dim=4 * width, max_len=in_shape[0],
        dropout_rate=0.0, attention_dropout_rate=0.0, deterministic=True,
        posemb_init=nn.initializers.normal(stddev=0.02))


def lm(depth, width, in_shape, vocab, per_position):
    """`depth` blocks of width `width` (2 heads, mlp 4·width), a learned position table, a dense
    head, no dropout; logits over the vocabulary at every position (`copy`)."""
    assert per_position, "lm1b's LM gives logits at every position"
    return TransformerLM(_config(depth, width, in_shape, vocab, tied=False))


def tied_lm(depth, width, in_shape, vocab, per_position):
    """`lm` with logits through the token table (logits_via_embedding)."""
    assert per_position, "lm1b's LM gives logits at every position"
    return TransformerLM(_config(depth, width, in_shape, vocab, tied=True))
