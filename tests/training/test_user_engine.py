"""A user's Flax module in the engine: the population sharded over two host devices against each
network trained alone (linen MLP, BatchNorm MLP, NNX dropout MLP, NNX CNN, and from
examples/flax_patterns.py the linen nn.scan MLP and the NNX scanned stack of vmap-made
BatchNorm + dropout blocks), and
BatchNorm statistics carried per member."""

import jax
import numpy as np
import pytest

from research.training import engine, plan, spec, sweep
from research.training.data import load_dataset
from tests.helpers import TINY
from tests.networks.test_user import user_spec
from tests.networks.test_user_patterns import pattern


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist1d")


def _single(run, dataset):
    program = engine.program_for([run], dataset)
    data = engine.data_for(dataset, run.eval_size)
    state, diag, (loss, acc, *_), _ = engine.train_member(engine.hyper_of(run), data, program,
                                                         run.steps // run.log_every)
    return state, diag, np.asarray(loss)


@pytest.mark.parametrize("name", [pytest.param("mlp", marks=pytest.mark.slow), "bn_mlp",
                                  pytest.param("dropout_mlp", marks=pytest.mark.slow),
                                  pytest.param("cnn", marks=pytest.mark.slow),
                                  "scan_mlp", pytest.param("nnx_scan_mlp", marks=pytest.mark.slow)])
def test_population_sharded_over_two_devices_equals_single_runs(name, mnist):
    assert jax.device_count() == 2
    s = user_spec(name, sigma_w2=[0.5, 2.0], lr=[0.05, 0.2]) if "scan" not in name else (
        spec.from_dict({**TINY, "model": pattern(name), "sigma_w2": [0.5, 2.0],
                            "lr": [0.05, 0.2]}))
    runs = spec.expand(s)
    records = sweep.train(plan.Population(0, 0, tuple(runs)), mnist, s)
    for run, record in zip(runs, records, strict=True):
        _, diag, loss = _single(run, mnist)
        np.testing.assert_allclose(record["loss_curve"][1:], loss, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(record["init_q"], diag["init_q"], rtol=1e-4)
        np.testing.assert_allclose(record["init_grad_norm"], diag["init_grad_norm"], rtol=1e-3)


def test_batchnorm_statistics_are_carried_per_member(mnist):
    s = user_spec("bn_mlp", sigma_w2=[0.5, 4.0], seeds=1)
    runs = spec.expand(s)
    program, hp, data = engine.place(runs, mnist)
    state, _ = engine.init_population(hp, data, program)
    means = sorted(k for k in state.params if k.endswith("/mean"))
    assert means and np.all(np.asarray(state.params[means[0]]) == 0)
    state, _ = engine.train_population_chunk(state, hp, data, np.int32(0), program, 1)
    after = np.asarray(state.params[means[0]])
    assert np.all(np.abs(after) > 0)  # updated by training
    assert not np.allclose(after[0], after[1])  # each member its own statistics
