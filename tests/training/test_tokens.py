"""Token data and sequence models: the generated tasks are what they say, bad token files are
refused in one line, the next-token loss is the masked mean, the causal mask hides the future,
a population equals each member alone, and one network equals a hand-written optax loop."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
import pytest

from research.cli import main as cli
from research.common.errors import SpecError
from research.networks import init as init_schemes
from research.networks import registry
from research.training import data as datasets
from research.training import engine, losses, plan, spec, sweep, tokens
from tests.helpers import tiny_spec

TOKEN_NET = {"arch": ["transformer"], "depth": [1], "width": [8], "heads": 2,
             "norm": ["pre_ln"], "activation": ["gelu"], "sigma_w2": [1.0], "lr": [0.05],
             "batch_size": [16], "seq_len": 4, "eval_size": 64}


def test_mod_add_is_every_pair_once_split_by_the_fraction():
    d = datasets.Dataset(*tokens.mod_add(7, 0.3))
    x = np.concatenate([d.x, d.x_test])
    y = np.concatenate([d.y, d.y_test])
    assert len(d.x) == round(0.3 * 49) and len(x) == 49
    assert len({(a, b) for a, b, _ in x}) == 49  # no pair twice: train and test disjoint
    np.testing.assert_array_equal(y, (x[:, 0] + x[:, 1]) % 7)
    assert (x[:, 2] == 7).all() and d.vocab == 8 and d.n_classes == 7
    again = tokens.mod_add(7, 0.3)
    np.testing.assert_array_equal(again.x, d.x)  # the split is fixed


def test_parity_and_copy_targets():
    d = datasets.Dataset(*tokens.parity(5, 0.5))
    np.testing.assert_array_equal(d.y, d.x.sum(1) % 2)
    assert len(d.x) + len(d.x_test) == 32
    c = datasets.Dataset(*tokens.copy(3, 0.5))
    assert c.per_position and c.x.shape[1] == 6
    seq = c.x[0]  # a1 a2 a3 SEP a1 a2; targets: -1 -1 -1 a1 a2 a3
    np.testing.assert_array_equal(c.y[0], [-1, -1, -1, *seq[:3]])
    assert seq[3] == 0 and (seq[4:] == seq[:2]).all()


def _npz(tmp_path, **arrays):
    path = tmp_path / "t.npz"
    np.savez(path, **arrays)
    return f"npz:{path}"


@pytest.mark.parametrize(("arrays", "named"), [
    ({"x": np.array([[0, 5]]), "y": np.array([1]), "vocab": np.array(4)}, "'x' has ids"),
    ({"x": np.array([[0.0, 1.0]]), "y": np.array([1]), "vocab": np.array(4)}, "'x' has dtype"),
    ({"x": np.array([[0, 1]]), "y": np.array([0.5]), "vocab": np.array(4)}, "'y' has dtype"),
    ({"x": np.array([[0, 1]]), "y": np.array([[1, 2, 3]]), "vocab": np.array(4)}, "'y' has shape"),
    ({"x": np.array([[0, 1]]), "y": np.array([1]), "x_test": np.array([[0, 1, 2]]),
      "y_test": np.array([1]), "vocab": np.array(4)}, "'x_test' has shape"),
    ({"x": np.array([[0, 1]]), "y": np.array([1]), "vocab": np.array(0.5)}, "'vocab'"),
])
def test_bad_token_file_is_one_line_naming_the_array(tmp_path, arrays, named):
    with pytest.raises(SpecError, match=named) as err:
        datasets.load_dataset(_npz(tmp_path, **arrays))
    assert "\n" not in str(err.value)


def test_ragged_array_is_refused_by_name(tmp_path):
    ragged = np.empty(2, object)
    ragged[:] = [[0, 1], [2]]
    with pytest.raises(SpecError, match="'x' is ragged"):
        datasets.load_dataset(_npz(tmp_path, x=ragged, y=np.array([0, 1]), vocab=np.array(3)))


def test_next_token_loss_is_the_mean_over_positions_with_a_target():
    rng = np.random.default_rng(0)
    out = rng.standard_normal((3, 4, 5))
    y = rng.integers(0, 5, (3, 4))
    y[0, :2] = tokens.NO_TARGET
    loss, acc = losses.next_token(jnp.asarray(out), jnp.asarray(y))
    logp = out - np.log(np.exp(out).sum(-1, keepdims=True))
    has = y >= 0
    ce = [-logp[i, t, y[i, t]] for i, t in zip(*np.nonzero(has), strict=True)]
    np.testing.assert_allclose(loss, np.mean(ce), rtol=1e-5)
    np.testing.assert_allclose(acc, np.mean((out.argmax(-1) == y)[has]), rtol=1e-6)


def _member(dataset_name, **fields):
    run = spec.expand(tiny_spec(**{**TOKEN_NET, "dataset": dataset_name, "seeds": 1,
                                   **fields}))[0]
    dataset = datasets.dataset_of(run)
    program = engine.program_for([run], dataset)
    return run, dataset, program, engine.data_for(dataset, run.eval_size), engine.hyper_of(run)


def test_causal_mask_hides_later_tokens():
    run, _, program, data, hp = _member("copy")
    assert program.model.causal and program.model.vocab == tokens.COPY_VOCAB
    params = engine.init_params(hp, data, program)
    x = jnp.asarray(data.x[:4])
    changed = x.at[:, 5:].set((x[:, 5:] + 1) % tokens.COPY_VOCAB)
    forward = registry.get("transformer").forward
    a, _ = forward(params, x, program.model, hp)
    b, _ = forward(params, changed, program.model, hp)
    np.testing.assert_allclose(a[:, :5], b[:, :5], rtol=1e-6, atol=1e-6)
    assert not np.allclose(a[:, 5:], b[:, 5:])


def test_embedding_entries_have_variance_sigma_w2():
    run, _, program, data, _ = _member("mod-add", modulus=97)
    layout = registry.get("transformer").layout(program.model)
    assert layout["w_embed"].fan_in == 1  # one row read per token
    hp = engine.hyper_of(run)._replace(sigma_w2=jnp.float32(3.0))
    w = init_schemes.params(jax.random.key(0), layout, program.model, hp)["w_embed"]
    assert w.shape == (98, 1, 8)
    assert abs(float(jnp.var(w)) / 3.0 - 1) < 0.15  # 784 entries: ±5% std of the estimate


@pytest.fixture(scope="module")
def copy_population():
    """One population on `copy` (per-position targets, causal attention; AdamW with weight
    decay) and each member trained alone: shared by the population and optax-loop checks."""
    runs = spec.expand(tiny_spec(**{**TOKEN_NET, "dataset": "copy", "sigma_w2": [0.5, 2.0],
                                    "seeds": 2, "optimizer": "adam", "lr": [0.01],
                                    "weight_decay": [0.1], "steps": 20, "chunk_steps": 20}))
    dataset = datasets.dataset_of(runs[0])
    records = sweep.train(plan.Population(0, 0, tuple(runs)), dataset, tiny_spec())
    program = engine.program_for(runs[:1], dataset)
    data = engine.data_for(dataset, runs[0].eval_size)
    alone = [engine.train_member(engine.hyper_of(run), data, program,
                                 run.steps // run.log_every) for run in runs]
    return runs, records, program, data, alone


def test_population_equals_each_member_alone_on_tokens(copy_population):
    runs, records, _, _, alone = copy_population
    for record, (_, diag, (loss, acc, _, test_acc, norm), _) in zip(records, alone,
                                                                    strict=True):
        np.testing.assert_allclose(record["loss_curve"][1:], loss, rtol=2e-5, atol=1e-6)
        np.testing.assert_allclose(record["acc_curve"][1:], acc, atol=1e-6)
        np.testing.assert_allclose(record["test_acc_curve"][1:], test_acc, atol=1e-6)
        np.testing.assert_allclose(record["norm_curve"], [diag["initial_norm"], *norm],
                                   rtol=1e-5)
        # memorised_step is the training curve's reached_step, read off the same curve
        reached = record["reached_step"]
        np.testing.assert_equal(record["memorised_step"], reached if reached >= 0 else np.nan)


def test_one_network_equals_a_hand_written_optax_loop(copy_population):
    """Member 0 alone against optax's adamw and a hand-written masked next-token loss."""
    runs, _, program, data, alone = copy_population
    run, (_, diag, (loss, acc, _, _, norm), _) = runs[0], alone[0]
    hp = engine.hyper_of(run)
    params = engine.init_params(hp, data, program)
    forward = registry.get("transformer").forward
    opt = optax.adamw(0.01, b1=0.9, weight_decay=0.1)
    state = opt.init(params)
    _, data_key = engine.member_keys(hp.seed)

    def loss_acc(p, x, y):  # the mean over (sequence, position) pairs that have a target
        out, _ = forward(p, x, program.model, hp)
        has = y != tokens.NO_TARGET
        ce = optax.softmax_cross_entropy_with_integer_labels(out, jnp.where(has, y, 0))
        right = (jnp.argmax(out, -1) == y) & has
        return jnp.sum(ce * has) / jnp.sum(has), jnp.sum(right) / jnp.sum(has)

    x, y = jnp.asarray(data.x), jnp.asarray(data.y)

    @jax.jit
    def step_fn(params, state, step):
        idx = jax.random.randint(jax.random.fold_in(data_key, step), (16,), 0, len(x))
        grads = jax.grad(lambda p: loss_acc(p, x[idx], y[idx])[0])(params)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    evaluate = jax.jit(lambda p: loss_acc(p, data.x_eval, data.y_eval))

    def norm_of(p):  # every parameter tensor, in float64
        return np.sqrt(sum(np.sum(np.asarray(v, np.float64) ** 2) for v in p.values()))

    assert float(diag["initial_norm"]) == pytest.approx(norm_of(params), rel=1e-5)
    logged, norms = [], []
    for step in range(run.steps):
        params, state = step_fn(params, state, step)
        if step % run.log_every == run.log_every - 1:
            logged.append(evaluate(params))
            norms.append(norm_of(params))
    np.testing.assert_allclose(loss, [a for a, _ in logged], rtol=1e-4)
    np.testing.assert_allclose(acc, [b for _, b in logged], atol=1e-6)
    np.testing.assert_allclose(norm, norms, rtol=1e-4)  # the weight norm AdamW decays


@pytest.mark.parametrize(("dataset", "net"), [
    ("mod-add", ["--arch", "transformer", "--heads", "2"]),
    ("parity", ["--arch", "transformer", "--heads", "2"]),
    ("npz", ["--arch", "transformer", "--heads", "2"]),
    ("mod-add", ["--model", f"{Path(__file__).resolve().parents[2]}/examples/flax_lm.py:lm"])])
def test_cli_sweep_on_token_data(tmp_path, dataset, net):
    if dataset == "npz":
        rng = np.random.default_rng(0)
        x = rng.integers(0, 6, (64, 5))
        dataset = _npz(tmp_path, x=x, y=np.roll(x, -1, axis=1), x_test=x[:16],
                       y_test=np.roll(x[:16], -1, axis=1), vocab=np.array(6))
    out = tmp_path / "out"
    target = ["--target-acc", "0.9"] if dataset == "parity" else []  # quick's 0.4: chance
    code = cli.main(["sweep", "quick", *net, "--dataset", dataset, *target,
                     "--modulus", "7", "--depth", "1", "--width", "8",
                     "--sigma-w2", "0.5", "2", "--seeds", "1", "--steps", "20",
                     "--log-every", "10", "--no-plot", "--out", str(out)])
    assert code == 0
    runs = pd.read_parquet(out / "runs")
    assert len(runs) == 2 and runs["final_test_acc"].notna().all()
    assert {"memorised_step", "generalised_step"} <= set(runs.columns)
    assert len(runs["test_acc_curve"][0]) == 3


@pytest.mark.parametrize("dataset", ["copy", "parity"])
def test_rnn_reads_tokens_causally(dataset):
    run, _, program, data, hp = _member(dataset, arch=["rnn"], norm=["none"], heads=4)
    params = engine.init_params(hp, data, program)
    x = jnp.asarray(data.x[:4])
    forward = registry.get("rnn").forward
    out, _ = forward(params, x, program.model, hp)
    if program.model.causal:
        assert out.shape == (4, x.shape[1], tokens.COPY_VOCAB)
        changed = x.at[:, 5:].set((x[:, 5:] + 1) % tokens.COPY_VOCAB)
        np.testing.assert_allclose(forward(params, changed, program.model, hp)[0][:, :5],
                                   out[:, :5], rtol=1e-6, atol=1e-6)
    else:
        assert out.shape == (4, 2)
    loss, _ = engine.loss_and_acc(params, x, jnp.asarray(data.y[:4]), program, hp)
    assert np.isfinite(float(loss))


MLP_NET = {"arch": ["mlp"], "norm": ["none"], "heads": 4}  # the defaults of its options


def test_mlp_on_tokens_is_the_dense_layer_on_one_hot_pairs():
    """The MLP's input layer on ids equals the slow obvious version, a dense layer on the
    concatenated one-hot vectors, and starts the first layer at q = σ_w² + σ_b² (fan-in: the
    sequence length, the inputs that are 1), within Monte-Carlo error."""
    run, _, program, data, hp = _member("mod-add", modulus=11, **MLP_NET,
                                        depth=[1], width=[512], sigma_w2=[2.0],
                                        sigma_b2=[0.5], activation=["relu"])
    layout = registry.get("mlp").layout(program.model)
    assert layout["w_in"].shape == (12, 3, 512) and layout["w_in"].fan_in == 3
    params = engine.init_params(hp, data, program)
    x = jnp.asarray(data.x[:32])
    one_hot = jax.nn.one_hot(x, 12).transpose(0, 2, 1).reshape(32, -1)  # (vocab, seq) order
    dense = params["w_in"].reshape(-1, 512)
    h = jax.nn.relu(one_hot @ dense + params["b_in"][None])
    np.testing.assert_allclose(registry.get("mlp").forward(params, x, program.model, hp)[0],
                               h @ params["w_out"] + params["b_out"][None], rtol=1e-5,
                               atol=1e-5)
    _, q = registry.get("mlp").forward(params, jnp.asarray(data.x), program.model, hp)
    # 512 units × 36 examples of σ_w²·χ²₃/3 + N(0, σ_b²): the estimate's std is ~4%
    assert abs(float(q[0]) / 2.5 - 1) < 0.15


def test_chance_is_the_most_frequent_training_label_and_a_target_at_it_is_refused(
        tmp_path, capsys):
    parity = datasets.load_dataset("parity")
    assert parity.chance == max(np.mean(parity.y == 0), np.mean(parity.y == 1)) >= 0.5
    copy = datasets.load_dataset("copy", seq_len=4)
    targets = copy.y[copy.y != tokens.NO_TARGET]
    assert copy.chance == pytest.approx(np.bincount(targets).max() / targets.size)
    assert datasets.load_dataset("teacher_student").chance is None  # regression
    out = tmp_path / "out"
    # the quick preset's target 0.4 on 2-class parity: every run converged at step 0
    assert cli.main(["sweep", "quick", "--dataset", "parity", "--arch", "transformer",
                     "--heads", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and not out.exists()
    assert f"target_acc: at or below chance on parity ({parity.chance:.3g}" in err


def test_mlp_refuses_per_position_targets(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["sweep", "quick", "--arch", "mlp", "--dataset", "copy", "--seq-len", "3",
                     "--depth", "1", "--out", str(out)]) == 2
    assert "arch: reads a whole sequence" in capsys.readouterr().err
    assert not out.exists()  # refused before anything is written


def test_a_user_lm_is_offered_vocab_and_per_position_and_probed_with_ids():
    from research.networks import user

    lm = f"{Path(__file__).resolve().parents[2]}/examples/flax_lm.py:lm"
    built = user.build(user.UserModel(lm, 1, 8, (5,), 16, vocab=16, per_position=True))
    assert built.made.kwargs["vocab"] == 16 and built.made.kwargs["per_position"]
    assert built.token_ids  # nn.Embed refuses float inputs: the build itself shows ids
    embed = next(e for e in built.entries if e.path.endswith("embed/embedding"))
    assert embed.fan_in == 1  # a lookup: one row read per token
