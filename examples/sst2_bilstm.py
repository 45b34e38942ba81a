"""Flax's SST-2 text classifier (google/flax, examples/sst2/models.py, Apache 2.0), as it is
written there: an embedding table as a raw `self.param` read by indexing, word dropout and
dropout, a bidirectional LSTM (`nn.scan` over `OptimizedLSTMCell`, each direction its own
scan, the backward one on flipped sequences), keys-only MLP attention that sows its scores
into "intermediates", and an MLP classifier. The one change: `depth` stacked BiLSTM layers
(the original has one) and all sequences full length (initmap's token tasks have no padding),
in the wrapper `BiLstmClassifier` at the end, initmap's.

    initmap sweep quick --model examples/sst2_bilstm.py:bilstm --dataset mod-add \\
        --modulus 11 --dry-run
"""

import functools
from collections.abc import Callable
from typing import Any

import jax
from flax import linen as nn
from jax import numpy as jnp

Array = jnp.ndarray


def sequence_mask(lengths: Array, max_length: int) -> Array:
    """A boolean mask over sequence positions for each given length."""
    return jnp.arange(max_length)[None] < lengths[:, None]


@jax.vmap
def flip_sequences(inputs: Array, lengths: Array) -> Array:
    """Flips a sequence of inputs along the time dimension, padding kept at the end."""
    max_length = inputs.shape[0]
    return jnp.flip(jnp.roll(inputs, max_length - lengths, axis=0), axis=0)


class WordDropout(nn.Module):
    """Like nn.Dropout, but replaces dropped input IDs by `unk_idx`."""

    dropout_rate: float
    unk_idx: int
    deterministic: bool | None = None

    @nn.compact
    def __call__(self, inputs: Array, deterministic: bool | None = None):
        deterministic = nn.module.merge_param("deterministic", self.deterministic,
                                              deterministic)
        if deterministic or self.dropout_rate == 0.0:
            return inputs
        rng = self.make_rng("dropout")
        mask = jax.random.bernoulli(rng, p=self.dropout_rate, shape=inputs.shape)
        return jnp.where(mask, jnp.array([self.unk_idx]), inputs)


class Embedder(nn.Module):
    """Embeds batches of token IDs into feature space."""

    vocab_size: int
    embedding_size: int
    embedding_init: Callable[..., Array] = nn.initializers.normal(stddev=0.1)
    dropout_rate: float = 0.0
    word_dropout_rate: float = 0.0
    unk_idx: int | None = None
    deterministic: bool | None = None
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        self.embedding = self.param("embedding", self.embedding_init,
                                    (self.vocab_size, self.embedding_size), self.dtype)
        self.dropout_layer = nn.Dropout(rate=self.dropout_rate)
        self.word_dropout_layer = WordDropout(dropout_rate=self.word_dropout_rate,
                                              unk_idx=self.unk_idx)

    def __call__(self, inputs: Array, deterministic: bool | None = None) -> Array:
        deterministic = nn.module.merge_param("deterministic", self.deterministic,
                                              deterministic)
        inputs = self.word_dropout_layer(inputs, deterministic=deterministic)
        embedded_inputs = self.embedding[inputs]
        return self.dropout_layer(embedded_inputs, deterministic=deterministic)


class SimpleLSTM(nn.Module):
    """A simple unidirectional LSTM."""

    hidden_size: int

    @functools.partial(nn.transforms.scan, variable_broadcast="params", in_axes=1,
                       out_axes=1, split_rngs={"params": False})
    @nn.compact
    def __call__(self, carry, x):
        return nn.OptimizedLSTMCell(self.hidden_size)(carry, x)

    def initialize_carry(self, input_shape):
        return nn.OptimizedLSTMCell(self.hidden_size, parent=None).initialize_carry(
            jax.random.key(0), input_shape)


class SimpleBiLSTM(nn.Module):
    """A simple bi-directional LSTM."""

    hidden_size: int

    def setup(self):
        self.forward_lstm = SimpleLSTM(self.hidden_size)
        self.backward_lstm = SimpleLSTM(self.hidden_size)

    def __call__(self, embedded_inputs, lengths):
        initial_state = self.forward_lstm.initialize_carry(embedded_inputs[:, 0].shape)
        _, forward_outputs = self.forward_lstm(initial_state, embedded_inputs)
        reversed_inputs = flip_sequences(embedded_inputs, lengths)
        initial_state = self.backward_lstm.initialize_carry(reversed_inputs[:, 0].shape)
        _, backward_outputs = self.backward_lstm(initial_state, reversed_inputs)
        backward_outputs = flip_sequences(backward_outputs, lengths)
        return jnp.concatenate([forward_outputs, backward_outputs], -1)


class MLP(nn.Module):
    """A simple Multilayer perceptron with 1 hidden layer."""

    hidden_size: int
    output_size: int
    activation: Callable[..., Any] = nn.tanh
    dropout_rate: float = 0.0
    output_bias: bool = False
    deterministic: bool | None = None

    def setup(self):
        self.intermediate_layer = nn.Dense(self.hidden_size)
        self.output_layer = nn.Dense(self.output_size, use_bias=self.output_bias)
        self.dropout_layer = nn.Dropout(rate=self.dropout_rate)

    def __call__(self, inputs: Array, deterministic: bool | None = None):
        deterministic = nn.module.merge_param("deterministic", self.deterministic,
                                              deterministic)
        hidden = self.intermediate_layer(inputs)
        hidden = self.activation(hidden)
        hidden = self.dropout_layer(hidden, deterministic=deterministic)
        return self.output_layer(hidden)


class KeysOnlyMlpAttention(nn.Module):
    """MLP attention scores from the keys alone (Bahdanau et al. 2015)."""

    hidden_size: int

    @nn.compact
    def __call__(self, keys: Array, mask: Array) -> Array:
        hidden = nn.Dense(self.hidden_size, name="keys", use_bias=False)(keys)
        energy = nn.tanh(hidden)
        scores = nn.Dense(1, name="energy", use_bias=False)(energy)
        scores = scores.squeeze(-1)
        scores = jnp.where(mask, scores, -jnp.inf)
        scores = nn.softmax(scores, axis=-1)
        # Captures the scores if 'intermediates' is mutable, otherwise does nothing.
        self.sow("intermediates", "attention", scores)
        return scores


class AttentionClassifier(nn.Module):
    """A classifier that uses attention to summarize the inputs."""

    hidden_size: int
    output_size: int
    dropout_rate: float = 0.0
    deterministic: bool | None = None

    def setup(self):
        self.dropout_layer = nn.Dropout(rate=self.dropout_rate)
        self.keys_only_mlp_attention = KeysOnlyMlpAttention(hidden_size=self.hidden_size)
        self.mlp = MLP(hidden_size=self.hidden_size, output_size=self.output_size,
                       output_bias=False, dropout_rate=self.dropout_rate)

    def __call__(self, encoded_inputs: Array, lengths: Array,
                 deterministic: bool | None = None) -> Array:
        deterministic = nn.module.merge_param("deterministic", self.deterministic,
                                              deterministic)
        encoded_inputs = self.dropout_layer(encoded_inputs, deterministic=deterministic)
        mask = sequence_mask(lengths, encoded_inputs.shape[1])
        attention = self.keys_only_mlp_attention(encoded_inputs, mask)
        context = jnp.expand_dims(attention, 1) @ encoded_inputs
        context = context.squeeze(1)
        context = self.dropout_layer(context, deterministic=deterministic)
        return self.mlp(context, deterministic=deterministic)


class BiLstmClassifier(nn.Module):
    """SST-2's TextClassifier with `depth` stacked BiLSTMs; every sequence full length."""

    depth: int
    embedding_size: int
    hidden_size: int
    vocab_size: int
    output_size: int
    dropout_rate: float = 0.5
    word_dropout_rate: float = 0.1
    unk_idx: int = 1

    @nn.compact
    def __call__(self, token_ids: Array, deterministic: bool | None = None) -> Array:
        lengths = jnp.full(token_ids.shape[:1], token_ids.shape[1], jnp.int32)
        h = Embedder(vocab_size=self.vocab_size, embedding_size=self.embedding_size,
                     dropout_rate=self.dropout_rate, word_dropout_rate=self.word_dropout_rate,
                     unk_idx=self.unk_idx)(token_ids, deterministic=deterministic)
        for _ in range(self.depth):
            h = SimpleBiLSTM(hidden_size=self.hidden_size)(h, lengths)
        return AttentionClassifier(hidden_size=self.hidden_size, output_size=self.output_size,
                                   dropout_rate=self.dropout_rate)(h, lengths,
                                                                   deterministic=deterministic)


def bilstm(depth, width, in_shape, out_dim, vocab, per_position):
    """`depth` BiLSTMs of hidden size `width` over embeddings of size `width`, one label per
    sequence; SST-2's dropout rates (0.5, word dropout 0.1), in training only."""
    assert not per_position, "SST-2's classifier gives one label per sequence"
    return BiLstmClassifier(depth=depth, embedding_size=width, hidden_size=width,
                            vocab_size=vocab, output_size=out_dim)
