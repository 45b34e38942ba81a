"""A decoder-only Transformer language model for `initmap sweep --model
examples/flax_lm.py:lm`, written the way Flax's `examples/lm1b/models.py` writes it: a config
dataclass, `nn.Embed`, learned position embeddings, pre-LN blocks of
`nn.MultiHeadDotProductAttention` under a causal mask and an MLP, dropout behind a
`deterministic` flag, and logits from a dense readout.

Inputs are (batch, seq) integer token ids (initmap's token datasets: mod-add, parity, copy,
npz files with a `vocab`). Outputs are (batch, seq, out_dim) next-token logits when
`per_position`, else the last position's (batch, out_dim) logits (the answer token of
mod-add and parity). initmap redraws every kernel at σ_w²/fan_in and the embedding tables at
σ_w² per entry (fan-in 1).
"""

from dataclasses import dataclass

import flax.linen as nn


@dataclass(frozen=True)
class TransformerConfig:
    """The model's hyperparameters in one place, as lm1b's `TransformerConfig`."""

    vocab_size: int
    output_vocab_size: int
    max_len: int
    emb_dim: int = 32
    num_heads: int = 2
    num_layers: int = 2
    mlp_dim: int = 128
    dropout_rate: float = 0.0
    attention_dropout_rate: float = 0.0
    deterministic: bool = True
    per_position: bool = True


class MlpBlock(nn.Module):
    config: TransformerConfig

    @nn.compact
    def __call__(self, inputs):
        cfg = self.config
        x = nn.relu(nn.Dense(cfg.mlp_dim)(inputs))
        x = nn.Dropout(rate=cfg.dropout_rate)(x, deterministic=cfg.deterministic)
        x = nn.Dense(inputs.shape[-1])(x)
        return nn.Dropout(rate=cfg.dropout_rate)(x, deterministic=cfg.deterministic)


class DecoderBlock(nn.Module):
    """Pre-LN: x + Attention(LN x), then x + MLP(LN x)."""

    config: TransformerConfig

    @nn.compact
    def __call__(self, inputs, decoder_mask):
        cfg = self.config
        x = nn.LayerNorm()(inputs)
        x = nn.MultiHeadDotProductAttention(
            num_heads=cfg.num_heads, qkv_features=cfg.emb_dim, use_bias=False,
            broadcast_dropout=False, dropout_rate=cfg.attention_dropout_rate,
            deterministic=cfg.deterministic)(x, mask=decoder_mask)
        x = nn.Dropout(rate=cfg.dropout_rate)(x, deterministic=cfg.deterministic)
        x = x + inputs
        return x + MlpBlock(cfg)(nn.LayerNorm()(x))


class TransformerLM(nn.Module):
    config: TransformerConfig

    @nn.compact
    def __call__(self, tokens):
        cfg = self.config
        x = nn.Embed(num_embeddings=cfg.vocab_size, features=cfg.emb_dim,
                     name="embed")(tokens)
        pos = self.param("pos_embedding", nn.initializers.normal(stddev=0.02),
                         (1, cfg.max_len, cfg.emb_dim))
        x = x + pos[:, :tokens.shape[1]]
        x = nn.Dropout(rate=cfg.dropout_rate)(x, deterministic=cfg.deterministic)
        mask = nn.make_causal_mask(tokens)
        for i in range(cfg.num_layers):
            x = DecoderBlock(cfg, name=f"block_{i}")(x, mask)
        x = nn.LayerNorm(name="final_norm")(x)
        logits = nn.Dense(cfg.output_vocab_size, name="logits")(x)
        return logits if cfg.per_position else logits[:, -1]


def lm(depth, width, in_shape, out_dim, vocab=None, per_position=False):
    """`depth` blocks of model width `width` over sequences of `in_shape[0]` tokens; `vocab`
    token ids (default out_dim + 1: mod-add's p answers and its `=`), dropout off."""
    cfg = TransformerConfig(vocab_size=vocab or out_dim + 1, output_vocab_size=out_dim,
                            max_len=in_shape[0], emb_dim=width,
                            num_heads=2 if width % 2 == 0 else 1, num_layers=depth,
                            mlp_dim=4 * width, per_position=per_position)
    return TransformerLM(cfg)
