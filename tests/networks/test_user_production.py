"""A user's module as production JAX code writes it (networks/user/), each pattern in a small
module written here in the style of nanodo's and Flax's example models: partitioned parameters
(linen `with_partitioning` / `with_logical_partitioning`, NNX sharding metadata), a tied
`embed.attend` readout, position tables written two ways, an extra rng stream, a sibling-file
import, a bfloat16 param_dtype, sown auxiliary losses. Each mapping is checked fan-in by fan-in;
each pattern sweeps through the CLI (three shared sweeps)."""

import re
import sys
import textwrap

import jax
import numpy as np
import pandas as pd
import pytest

from research.cli.main import main
from research.common.errors import SpecError
from research.networks import user
from research.networks.user import network
from research.training import engine, spec
from research.training.data import load_dataset
from tests.helpers import TINY

BLOCKS = textwrap.dedent('''
    import flax.linen as nn


    class Mlp(nn.Module):
        """An MLP block in a file of its own, imported by the file beside it."""

        hidden: int

        @nn.compact
        def __call__(self, x):
            return nn.Dense(x.shape[-1])(nn.gelu(nn.Dense(self.hidden)(x)))
''')

MODELS = textwrap.dedent('''
    import dataclasses
    from functools import partial

    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from prod_blocks import Mlp  # the sibling file


    @dataclasses.dataclass
    class DoConfig:  # nanodo's DoConfig, small
        D: int
        H: int
        L: int
        N: int
        V: int
        F: int
        kernel_init: nn.initializers.Initializer = nn.initializers.xavier_uniform()
        embed_init: nn.initializers.Initializer = nn.initializers.variance_scaling(
            1.0, "fan_in", "normal", out_axis=0)
        fsdp_enabled: bool = True


    def fsdp(init, axes, cfg):  # nanodo's fsdp.init
        return nn.with_partitioning(init, axes) if cfg.fsdp_enabled else init


    class CausalAttn(nn.Module):
        cfg: DoConfig

        @nn.compact
        def __call__(self, x):
            cfg = self.cfg
            dh = cfg.D // cfg.H
            multilinear = partial(nn.DenseGeneral, axis=-1, features=(cfg.H, dh),
                                  use_bias=False,
                                  kernel_init=fsdp(cfg.kernel_init, ("data", None, None), cfg))
            q, k, v = (multilinear(name=n)(x) for n in ("query", "key", "value"))
            att = jnp.einsum("...qhd,...khd->...hqk", q / dh ** 0.5, k)
            n = x.shape[1]
            att = jnp.where(jnp.tril(jnp.ones((1, 1, n, n), bool)), att, -1e9)
            out = jnp.einsum("...hqk,...khd->...qhd", jax.nn.softmax(att, axis=-1), v)
            return nn.DenseGeneral(cfg.D, axis=(-2, -1), use_bias=False, name="attn_out_proj",
                                   kernel_init=fsdp(cfg.kernel_init, (None, None, "data"),
                                                    cfg))(out)


    class TBlock(nn.Module):
        cfg: DoConfig

        @nn.compact
        def __call__(self, x):
            x = x + CausalAttn(self.cfg)(nn.LayerNorm(use_bias=False)(x))
            z = nn.LayerNorm(use_bias=False)(x)
            dense = partial(nn.Dense, use_bias=False,
                            kernel_init=fsdp(self.cfg.kernel_init, ("data", None), self.cfg))
            return x + dense(self.cfg.D, name="down")(nn.gelu(dense(self.cfg.F, name="up")(z)))


    class TransformerDo(nn.Module):
        """nanodo's decoder: partitioned tables, positions by Embed on arange, tied readout."""

        cfg: DoConfig

        def setup(self):
            cfg = self.cfg
            table = fsdp(cfg.embed_init, (None, "data"), cfg)
            self.embed = nn.Embed(cfg.V, cfg.D, embedding_init=table)
            self.pos_embed = nn.Embed(cfg.L, cfg.D, embedding_init=table)
            self.blocks = [TBlock(cfg) for _ in range(cfg.N)]
            self.out_ln = nn.LayerNorm(use_bias=False)

        def __call__(self, y):
            h = self.embed(y) + self.pos_embed(jnp.arange(0, y.shape[1])[None, ...])
            for block in self.blocks:
                h = block(h)
            return self.embed.attend(self.out_ln(h).astype(jnp.float32))


    def nanodo_lm(depth, width, in_shape, vocab, per_position, fsdp_enabled=True):
        return TransformerDo(DoConfig(D=width, H=2, L=in_shape[0], N=depth, V=vocab,
                                      F=2 * width, fsdp_enabled=fsdp_enabled))


    def nanodo_plain(depth, width, in_shape, vocab, per_position):
        return nanodo_lm(depth, width, in_shape, vocab, per_position, fsdp_enabled=False)


    class AddPositionEmbs(nn.Module):
        """lm1b's learned position table: a raw param added to the input."""

        @nn.compact
        def __call__(self, x):
            pos = self.param("pos_embedding", nn.with_logical_partitioning(
                nn.initializers.normal(0.02), (None, "length", "embed")), (1, *x.shape[1:]))
            return x + pos


    class Lm1bStyle(nn.Module):
        """Logically partitioned kernels, a raw position table, the sibling file's MLP."""

        depth: int
        width: int
        out_dim: int

        @nn.compact
        def __call__(self, x):
            h = nn.Dense(self.width, kernel_init=nn.with_logical_partitioning(
                nn.initializers.xavier_uniform(), ("embed", "mlp")))(x[..., None])
            h = AddPositionEmbs()(h)
            for _ in range(self.depth):
                h = h + Mlp(2 * self.width)(nn.LayerNorm()(h))
            return nn.Dense(self.out_dim)(h.mean(axis=1))


    def lm1b_style(depth, width, out_dim):
        return Lm1bStyle(depth, width, out_dim)


    class NoisyMlp(nn.Module):
        """Gaussian input noise in training, from a stream of its own (seq2seq's 'lstm')."""

        depth: int
        width: int
        out_dim: int

        @nn.compact
        def __call__(self, x, train: bool = False):
            if train:
                x = x + 0.1 * jax.random.normal(self.make_rng("noise"), x.shape)
            for _ in range(self.depth):
                x = nn.tanh(nn.Dense(self.width)(x))
            return nn.Dense(self.out_dim)(x)


    def noisy_mlp(depth, width, out_dim):
        return NoisyMlp(depth, width, out_dim)


    class HalfMlp(nn.Module):
        depth: int
        width: int
        out_dim: int

        @nn.compact
        def __call__(self, x):
            dense = partial(nn.Dense, param_dtype=jnp.bfloat16)
            for _ in range(self.depth):
                x = nn.tanh(dense(self.width)(x))
            return dense(self.out_dim, kernel_init=nn.initializers.zeros)(x)


    def bf16_mlp(depth, width, out_dim):
        return HalfMlp(depth, width, out_dim)


    class SownMlp(nn.Module):
        """Sows a load-balancing-style loss into 'losses' and its features."""

        depth: int
        width: int
        out_dim: int

        @nn.compact
        def __call__(self, x):
            for _ in range(self.depth):
                x = nn.tanh(nn.Dense(self.width)(x))
                self.sow("losses", "aux", 0.01 * jnp.mean(x ** 2))
            self.sow("intermediates", "features", x)
            return nn.Dense(self.out_dim)(x)


    def sown_mlp(depth, width, out_dim):
        return SownMlp(depth, width, out_dim)


    class NnxSharded(nnx.Module):
        """NNX variables with sharding metadata, a sown auxiliary loss."""

        def __init__(self, depth, width, in_dim, out_dim, rngs):
            init = nnx.with_partitioning(nnx.initializers.lecun_normal(), (None, "model"))
            self.layers = nnx.List([nnx.Linear(in_dim if i == 0 else width, width,
                                               kernel_init=init, rngs=rngs)
                                    for i in range(depth)])
            self.out = nnx.Linear(width, out_dim, kernel_init=init, rngs=rngs)

        def __call__(self, x):
            for layer in self.layers:
                x = nnx.tanh(layer(x))
            self.sow(nnx.Intermediate, "aux_loss", 0.01 * jnp.mean(x ** 2))
            return self.out(x)


    def nnx_sharded(depth, width, in_shape, out_dim, rngs):
        return NnxSharded(depth, width, in_shape[0], out_dim, rngs)


    class AlwaysDropout(nn.Module):
        width: int
        out_dim: int

        @nn.compact
        def __call__(self, x, train: bool = False):
            h = nn.Dropout(0.5, deterministic=False)(nn.tanh(nn.Dense(self.width)(x)))
            return nn.Dense(self.out_dim)(h)


    def always_dropout(width, out_dim):
        return AlwaysDropout(width, out_dim)


    def takes_depth_ignores_it(depth, width, out_dim):
        return AlwaysDropout(width, out_dim)


    class InitZoo(nn.Module):
        """Initializers of common practice, a tied table and a zero head both making logits."""

        vocab: int

        @nn.compact
        def __call__(self, y):
            embed = nn.Embed(self.vocab, 16, embedding_init=nn.initializers.variance_scaling(
                1.0, "fan_in", "normal", out_axis=0))
            h = nn.tanh(nn.Dense(64, kernel_init=nn.initializers.xavier_uniform(),
                                 name="xavier")(embed(y)))
            h = nn.tanh(nn.Dense(16, name="lecun")(h))
            head = nn.Dense(self.vocab, kernel_init=nn.initializers.zeros, name="head")
            return embed.attend(h) + head(h)


    def init_zoo(vocab):
        return InitZoo(vocab)


    class TwoWays(nn.Module):
        """One kernel read forwards and transposed: two contractions, two fan-ins."""

        @nn.compact
        def __call__(self, x):
            w = self.param("kernel", nn.initializers.lecun_normal(), (x.shape[-1], 16))
            h = jnp.tanh(x @ w)
            return nn.Dense(10)(jnp.tanh(h @ w.T))


    def two_ways():
        return TwoWays()
''')


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("prod")
    (folder / "prod_blocks.py").write_text(BLOCKS)
    (folder / "prod_models.py").write_text(MODELS)
    return folder / "prod_models.py"


def built(models, name, depth=2, width=8, in_shape=(40,), out_dim=10, **kw):
    return user.build(user.UserModel(f"{models}:{name}", depth, width, in_shape, out_dim, **kw))


def mapped(b) -> dict:
    return {e.path: (e.role, e.fan_in) for e in b.entries}


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist1d")


# --- partitioned parameters, a tied readout, position tables ---------------------------------

def nanodo(models, name="nanodo_lm", **kw):
    return built(models, name, 2, 8, (5,), 16, vocab=16, per_position=True, **kw)


def test_nanodo_style_partitioned_lm_maps_fan_in_by_fan_in(models):
    got = mapped(nanodo(models))
    assert got == mapped(nanodo(models, "nanodo_plain"))  # boxed or not: the same mapping
    assert got["params/embed/embedding"] == ("readout", 8)  # attend: contracts the width
    assert got["params/pos_embed/embedding"] == ("position", 0)  # Embed on arange
    for b in (0, 1):
        block = f"params/blocks_{b}/"
        for qkv in ("query", "key", "value"):
            assert got[f"{block}CausalAttn_0/{qkv}/kernel"] == ("weight", 8)
        assert got[f"{block}CausalAttn_0/attn_out_proj/kernel"] == ("weight", 8)  # (H, Dh)
        assert got[f"{block}up/kernel"] == ("weight", 8)
        assert got[f"{block}down/kernel"] == ("weight", 16)
        assert got[f"{block}LayerNorm_0/scale"] == ("untouched", 0)
    readouts = [e for e in nanodo(models).entries if e.role == "readout"]
    assert [e.path for e in readouts] == ["params/embed/embedding"]  # not the last kernel
    tied = readouts[0]
    assert tied.lookup and any("gather" in a for a in tied.also)
    text = user.mapping_text(nanodo(models))
    assert re.search(r"params/embed/embedding +\(16, 8\) +readout +8 +dot_general "
                     r"contracting \(8,\) .*makes the output", text)
    assert re.search(r"also: gather: a row lookup", text)
    assert any("read twice" in n and "model_fan_in" in n for n in nanodo(models).notes)


def test_boxed_and_plain_parameters_start_from_the_same_draws(models):
    data = load_dataset("copy", seq_len=4)
    params = {}
    for name in ("nanodo_lm", "nanodo_plain"):
        run = spec.expand(spec.from_dict({**TINY, "model": f"{models}:{name}", "dataset": "copy",
                                          "seq_len": 4, "depth": [2], "width": [8],
                                          "seeds": 1, "target_acc": 0.5}))[0]
        program = engine.program_for([run], data)
        params[name] = engine.init_params(engine.hyper_of(run), engine.data_for(data, 64),
                                          program)
    for a, b in zip(params["nanodo_lm"].values(), params["nanodo_plain"].values(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_tied_readout_is_drawn_by_the_dots_fan_in_and_makes_logits_of_variance_sigma_w2(
        models):
    data = load_dataset("copy", seq_len=4)
    sigma_w2, width = 0.5, 32
    runs = spec.expand(spec.from_dict({**TINY, "model": f"{models}:nanodo_lm",
                                       "dataset": "copy", "seq_len": 4, "depth": [1],
                                       "width": [width], "sigma_w2": [sigma_w2], "seeds": 4,
                                       "target_acc": 0.5}))
    program = engine.program_for(runs, data)
    hp = engine.hyper_for(runs)
    d = engine.data_for(data, 64)
    params = jax.vmap(lambda h: engine.init_params(h, d, program))(hp)
    table = next(v for k, v in params.items() if k.endswith("embed/embedding"))
    assert np.mean(np.square(table)) == pytest.approx(sigma_w2 / width, rel=0.1)
    logits = jax.vmap(lambda p, h: network.forward(p, d.x_eval, program.model, h)[0])(params, hp)
    # the final LayerNorm's output has mean square 1 per position: the logits, σ_w²
    assert np.mean(np.square(logits)) == pytest.approx(sigma_w2, rel=0.15)


def test_tied_readout_refuses_readout_scaling_in_one_line(models, tmp_path, capsys):
    for flag in (["--readout-scale", "0.5", "1"], ["--readout", "zero"]):
        code = main(["sweep", "quick", "--model", f"{models}:nanodo_lm", "--dataset", "copy",
                     "--seq-len", "4", "--depth", "1", "--width", "8", "--target-acc", "0.5",
                     *flag, "--out", str(tmp_path / "x")])
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1
        assert "also the input's lookup (a tied embedding)" in err


def test_lm1b_style_logical_partitions_a_raw_position_table_and_a_sibling_import(models):
    before = list(sys.path)
    got = mapped(built(models, "lm1b_style"))
    assert sys.path == before  # the factory's folder is on it only while importing / calling
    assert got["params/Dense_0/kernel"] == ("weight", 1)
    assert got["params/AddPositionEmbs_0/pos_embedding"] == ("position", 0)  # one rule
    for b in (0, 1):
        assert got[f"params/Mlp_{b}/Dense_1/kernel"] == ("weight", 8)  # sibling's module
        assert got[f"params/Mlp_{b}/Dense_0/kernel"] == ("weight", 16)
        assert got[f"params/Mlp_{b}/Dense_0/bias"] == ("bias", 0)
        assert got[f"params/LayerNorm_{b}/bias"] == ("untouched", 0)
    assert got["params/Dense_1/kernel"] == ("readout", 8)


def test_position_tables_keep_the_modules_init(models, mnist):
    tables = []
    for sigma_w2 in (0.5, 4.0):
        run = spec.expand(spec.from_dict({**TINY, "model": f"{models}:lm1b_style", "seeds": 1,
                                          "sigma_w2": [sigma_w2], "depth": [1]}))[0]
        program = engine.program_for([run], mnist)
        hp = engine.hyper_of(run)
        params = engine.init_params(hp, engine.data_for(mnist, 64), program)
        tables.append(next(v for k, v in params.items() if k.endswith("pos_embedding")))
    own_key = jax.random.split(engine.member_keys(hp.seed)[0], 3)[0]  # network.init's split
    own = network.built_for(program.model).module_init(own_key)
    np.testing.assert_array_equal(tables[0], own["params/AddPositionEmbs_0/pos_embedding"])
    np.testing.assert_array_equal(tables[0], tables[1])  # whatever σ_w²


def test_a_weight_read_with_two_fan_ins_is_refused_naming_model_fan_in(models):
    with pytest.raises(SpecError, match=r"model_fan_in: .*params/kernel is read with fan-ins "
                                        r"\[16, 40\].*model_fan_in = "):
        built(models, "two_ways")
    fixed = built(models, "two_ways", fan_in='{"^params/kernel$": 40}')
    assert mapped(fixed)["params/kernel"] == ("weight", 40)


def test_nnx_sharding_metadata_maps_as_plain(models):
    got = mapped(built(models, "nnx_sharded"))
    assert got["params/layers/0/kernel"] == ("weight", 40)
    assert got["params/layers/1/kernel"] == ("weight", 8)
    assert got["params/out/kernel"] == ("readout", 8)


# --- rng streams, dtypes, sown values, what is said --------------------------------------------

def test_an_extra_rng_stream_gets_a_key_per_step(models, mnist):
    b = built(models, "noisy_mlp")
    assert "noise" in b.rng_streams and any("noise" in n for n in b.notes)
    run = spec.expand(spec.from_dict({**TINY, "model": f"{models}:noisy_mlp", "seeds": 1}))[0]
    program = engine.program_for([run], mnist)
    hp = engine.hyper_of(run)
    params = engine.init_params(hp, engine.data_for(mnist, 64), program)
    x = mnist.x[:8]
    a, b_, c = (network.train_forward(params, x, program.model, hp, jax.random.key(k))[0]
                for k in (1, 2, 1))
    assert not np.allclose(a, b_) and np.array_equal(a, c)
    e1, _ = network.forward(params, x, program.model, hp)
    assert np.array_equal(e1, network.forward(params, x, program.model, hp)[0])


def test_bf16_params_are_read_in_bf16_from_float32_copies(models, mnist):
    b = built(models, "bf16_mlp")
    assert {e.dtype for e in b.entries} == {"bfloat16"}
    assert any("bfloat16" in n and "float32 master" in n for n in b.notes)
    assert mapped(b)["params/Dense_0/kernel"] == ("weight", 40)
    run = spec.expand(spec.from_dict({**TINY, "model": f"{models}:bf16_mlp", "seeds": 1}))[0]
    program = engine.program_for([run], mnist)
    hp = engine.hyper_of(run)
    params = engine.init_params(hp, engine.data_for(mnist, 64), program)
    assert {str(v.dtype) for v in params.values()} == {"float32"}
    program_text = str(jax.make_jaxpr(
        lambda p: network.forward(p, mnist.x[:4], program.model, hp))(params))
    assert "bf16" in program_text


def test_sown_losses_are_said_and_added_by_model_aux_loss(models, mnist):
    plain = built(models, "sown_mlp")
    assert any("sown values not in the loss: intermediates/features, losses/aux" in n
               for n in plain.notes)
    added = built(models, "sown_mlp", aux_loss="^losses")
    assert any("added to the training loss" in n and "losses/aux" in n for n in added.notes)
    with pytest.raises(SpecError, match="model_aux_loss: .*matches none"):
        built(models, "sown_mlp", aux_loss="nothing")
    run = spec.expand(spec.from_dict({**TINY, "model": f"{models}:sown_mlp", "seeds": 1,
                                      "model_aux_loss": "^losses"}))[0]
    program = engine.program_for([run], mnist)
    hp = engine.hyper_of(run)
    params = engine.init_params(hp, engine.data_for(mnist, 64), program)
    x = mnist.x[:16]
    _, _, aux = network.train_forward(params, x, program.model, hp, jax.random.key(0))
    b = network.built_for(program.model)
    variables: dict = {}
    for e in b.entries:
        *parents, leaf = e.path.split("/")
        node = variables
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = params[e.key]
    _, sown = b.made.module.apply(variables, x, mutable=["losses"])
    assert float(aux) == pytest.approx(float(sum(sown["losses"]["aux"])), rel=1e-5)
    nnx_built = built(models, "nnx_sharded", aux_loss="aux")
    assert any("Intermediate/aux_loss" in n for n in nnx_built.notes)


def test_stochastic_evaluation_and_an_ignored_depth_are_said(models, tmp_path, capsys):
    notes = built(models, "always_dropout").notes
    assert any(n.startswith("evaluation is stochastic") for n in notes)
    assert any("takes no depth" in n for n in notes)
    assert not any("stochastic" in n for n in built(models, "noisy_mlp").notes)
    for name, message in (("always_dropout", r"depth: always_dropout\(\) takes no depth"),
                          ("takes_depth_ignores_it", r"depth: takes_depth_ignores_it\(\) builds "
                           "the same module at depth 2 and 4")):
        code = main(["sweep", "quick", "--model", f"{models}:{name}", "--depth", "2", "4",
                     "--width", "8", "--out", str(tmp_path / name)])
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1 and re.search(message, err)


def test_own_init_is_the_modules_initializers_as_sigma_w2(models):
    b = built(models, "init_zoo", 1, 16, (5,), 16, vocab=16, per_position=True)
    assert mapped(b) == {"params/Embed_0/embedding": ("readout", 16),
                         "params/xavier/kernel": ("weight", 16), "params/xavier/bias": ("bias", 0),
                         "params/lecun/kernel": ("weight", 64), "params/lecun/bias": ("bias", 0),
                         "params/head/kernel": ("readout", 16), "params/head/bias": ("bias", 0)}
    own = {(r["path"], r["role"]): r["sigma_w2"] for r in network.own_init(b)}
    assert own == pytest.approx({
        ("params/Embed_0/embedding", "readout"): 1.0,  # variance 1/16 (out_axis 0), × 16
        ("params/Embed_0/embedding", "lookup"): 1 / 16,  # the same entries, × 1
        ("params/xavier/kernel", "weight"): 0.4,  # xavier_uniform on (16, 64): 2/80 × 16
        ("params/lecun/kernel", "weight"): 1.0,  # Dense's lecun_normal: 1/64 × 64
        ("params/head/kernel", "readout"): 0.0}, rel=0.05)  # a zero head


# --- each pattern through the CLI ------------------------------------------------------------

def _sweep(out, models, names, *flags):
    argv = ["sweep", "quick", "--model", *(f"{models}:{n}" for n in names), "--depth", "1",
            "--width", "8", "--sigma-w2", "1", "--seeds", "1", "--steps", "4", "--log-every",
            "2", "--chunk-steps", "4", "--batch-size", "8", "--eval-size", "32", "--out",
            str(out), "--no-plot", *flags]
    assert main(argv) == 0
    return pd.read_parquet(out / "runs")


@pytest.fixture(scope="module")
def swept(models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("swept")
    return {
        "plain": _sweep(folder / "plain", models, ["lm1b_style", "noisy_mlp", "bf16_mlp"],
                        "--quiet"),
        "aux": _sweep(folder / "aux", models, ["sown_mlp", "nnx_sharded"], "--model-aux-loss",
                      "aux", "--quiet"),
        "lm": _sweep(folder / "lm", models, ["nanodo_lm"], "--dataset", "copy", "--seq-len",
                     "4", "--target-acc", "0.5", "--quiet"),
    }


@pytest.mark.parametrize(("sweep", "name"), [
    ("plain", "lm1b_style"), ("plain", "noisy_mlp"), ("plain", "bf16_mlp"),
    ("aux", "sown_mlp"), ("aux", "nnx_sharded"), ("lm", "nanodo_lm")])
def test_each_pattern_sweeps_through_the_cli(swept, sweep, name):
    runs = swept[sweep]
    mine = runs[runs.model.str.endswith(f":{name}")]
    assert len(mine) == 1 and mine.outcome.isin(["converged", "stalled", "diverged"]).all()
    assert np.isfinite(np.stack(mine.loss_curve)).all()
    if sweep == "aux":
        assert set(runs.model_aux_loss) == {"aux"}


def test_notes_are_printed_by_the_sweep(models, tmp_path, capsys):
    assert main(["sweep", "quick", "--model", f"{models}:bf16_mlp", "--depth", "2", "--width",
                 "8", "--sigma-w2", "1", "--steps", "4", "--log-every", "2", "--chunk-steps",
                 "4", "--out", str(tmp_path / "n"), "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert "tensors in bfloat16" in captured.err and "estimated time:" in captured.out
    assert re.search(r"params/Dense_0/kernel +\(40, 8\) +weight +40 .*\[bfloat16\]",
                     captured.out)


def test_dry_run_estimates_a_user_module_from_a_short_timed_run(models, tmp_path, capsys,
                                                                monkeypatch):
    # The estimate is the calibration's: a short run of the population, cold then warm, scaled
    # to the sweep's steps. A clock on which the two short runs take 10 s and 2 s: 8 s
    # of compile, 2 s of training for 4 of the 8 steps, so 8 + 2 × 8 / 4 = 12 s.
    import json
    from types import SimpleNamespace

    from research.training import sweep

    clock, trained, real_train = [0.0], [], sweep.train

    def train(pop, *args, **kwargs):  # really trains; the clock says 10 s, then 2 s
        trained.append({r.steps for r in pop.runs})
        clock[0] += 10.0 if len(trained) == 1 else 2.0
        return real_train(pop, *args, **kwargs)

    monkeypatch.setattr(sweep, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    monkeypatch.setattr(sweep, "train", train)
    assert main(["sweep", "quick", "--model", f"{models}:noisy_mlp", "--depth", "1", "--width",
                 "8", "--sigma-w2", "1", "--seeds", "1", "--steps", "8", "--log-every", "2",
                 "--chunk-steps", "4", "--out", str(tmp_path / "e"), "--dry-run", "--json"]) == 0
    estimate = json.loads(capsys.readouterr().out)["estimate"]
    assert trained == [{4}, {4}]  # the short run, twice; nothing stored
    assert estimate["compile_s_per_bucket"] == 8.0 and estimate["estimated_s"] == 12.0
    assert not (tmp_path / "e").exists()
