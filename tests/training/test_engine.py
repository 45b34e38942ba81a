"""The vmapped population against the slow obvious version, member by member."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.training import engine, plan, spec, sweep
from tests.helpers import tiny_spec


def _single(run, dataset):
    """One run alone: no vmap, no sharding, every step in one scan."""
    program = engine.program_for([run], dataset)
    data = engine.data_for(dataset, run.eval_size)
    state, diag, (loss, acc, *_), _ = engine.train_member(engine.hyper_of(run), data, program,
                                                         run.steps // run.log_every)
    return state, diag, np.asarray(loss), np.asarray(acc)


def _population(runs, dataset):
    return sweep.train(plan.Population(0, 0, tuple(runs)), dataset, tiny_spec())


def test_population_equals_loop_of_single_runs(mnist1d):
    runs = spec.expand(tiny_spec(sigma_w2=[0.5, 1.5, 3.0], lr=[0.05, 0.2]))
    records = _population(runs, mnist1d)
    for run, record in zip(runs, records, strict=True):
        _, diag, loss, acc = _single(run, mnist1d)
        assert record["run_id"] == run.run_id
        np.testing.assert_allclose(record["loss_curve"][1:], loss, rtol=2e-5, atol=1e-6)
        np.testing.assert_allclose(record["acc_curve"][1:], acc, atol=1e-6)
        np.testing.assert_allclose(record["init_q"], diag["init_q"], rtol=2e-5)


@pytest.mark.slow
def test_member_result_does_not_depend_on_its_population(mnist1d):
    target = spec.expand(tiny_spec(sigma_w2=[1.5], lr=[0.1], seeds=1))[0]
    alone = _population([target], mnist1d)[0]
    rng = np.random.default_rng(0)
    others = [dataclasses.replace(target, seed=int(s), sigma_w2=float(w), lr=float(lr))
              for s, w, lr in zip(rng.integers(1, 10**6, 99), rng.uniform(0.1, 8, 99),
                                  rng.uniform(0.01, 0.5, 99), strict=True)]
    crowd = _population(others[:50] + [target] + others[50:], mnist1d)
    among = next(r for r in crowd if r["run_id"] == target.run_id)
    np.testing.assert_allclose(among["loss_curve"], alone["loss_curve"], rtol=2e-5, atol=1e-6)


def test_diverging_member_is_frozen_and_isolated(mnist1d):
    runs = spec.expand(tiny_spec(sigma_w2=[1.0], lr=[0.05], seeds=3))
    blowup = dataclasses.replace(runs[1], lr=1e4, sigma_w2=50.0)
    clean = _population(runs, mnist1d)
    mixed = _population([runs[0], blowup, runs[2]], mnist1d)
    assert mixed[1]["outcome"] == "diverged" and mixed[1]["diverged_step"] >= 0
    for a, b in ((clean[0], mixed[0]), (clean[2], mixed[2])):
        np.testing.assert_allclose(a["loss_curve"], b["loss_curve"], rtol=2e-5, atol=1e-6)
    state, *_ = _single(blowup, mnist1d)
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(state.params))
    assert not bool(state.running)


@pytest.mark.slow
def test_jit_equals_no_jit(mnist1d):
    run = spec.expand(tiny_spec(steps=20, log_every=10, chunk_steps=20, depth=[2]))[0]
    _, _, loss_jit, _ = _single(run, mnist1d)
    with jax.disable_jit():
        _, _, loss_eager, _ = _single(run, mnist1d)
    np.testing.assert_allclose(loss_jit, loss_eager, rtol=1e-4)


def test_data_order_comes_from_the_seed(mnist1d):
    runs = spec.expand(tiny_spec(sigma_w2=[1.0], seeds=2))
    a, b = _population(runs, mnist1d)
    assert a["loss_curve"][1:] != b["loss_curve"][1:]
    again = _population(runs, mnist1d)
    assert again[0]["loss_curve"] == a["loss_curve"]  # bit-for-bit deterministic


def test_early_stop_freezes_converged_members_and_cuts_the_curve(mnist1d):
    runs = spec.expand(tiny_spec(sigma_w2=[1.0], lr=[0.1], target_acc=0.15, early_stop=True,
                                 steps=60, seeds=1))
    record = _population(runs, mnist1d)[0]
    assert record["outcome"] == "converged"
    assert record["curve_steps"][-1] == record["converged_step"] < 60


def test_a_training_chunk_makes_no_host_transfers(mnist1d):
    from research.training import devices

    runs = spec.expand(tiny_spec(seeds=2, eval_size=100))
    program, hp, data = engine.place(runs, mnist1d)
    _, replicated = devices.member_sharding()
    state, _ = engine.init_population(hp, data, program)
    start = jax.device_put(np.int32(0), replicated)
    with jax.transfer_guard("disallow"):
        state, logs = engine.train_population_chunk(state, hp, data, start, program, 2)
        jax.block_until_ready((state, logs))


def test_compaction_drops_decided_members_without_changing_results(mnist1d, monkeypatch):
    runs = spec.expand(tiny_spec(sigma_w2=[1.0], lr=[0.05, 1e4], seeds=4, steps=60,
                                 chunk_steps=10))
    sizes = []
    compact = sweep._compact

    def spy(*args):
        out = compact(*args)
        sizes.append(len(out[2]))
        return out

    monkeypatch.setattr(sweep, "_compact", spy)
    pop = plan.Population(0, 0, tuple(runs))
    compacted = sweep.train(pop, mnist1d, tiny_spec(chunk_steps=10))
    full = sweep.train(pop, mnist1d, tiny_spec(chunk_steps=10, compact=False))
    assert sizes and min(sizes) == 4 < len(runs)  # the 4 diverging members left
    for a, b in zip(compacted, full, strict=True):
        assert a["outcome"] == b["outcome"] and a["diverged_step"] == b["diverged_step"]
        np.testing.assert_allclose(a["loss_curve"], b["loss_curve"], rtol=2e-5, atol=1e-6)
        np.testing.assert_allclose(a["final_test_acc"], b["final_test_acc"], atol=1e-6)
    assert sum(r["outcome"] == "diverged" for r in full) == 4


def test_bfloat16_compute_tracks_float32_but_is_not_it(mnist1d):
    runs = spec.expand(tiny_spec(sigma_w2=[1.0], seeds=1))
    bf16 = [spec.expand(tiny_spec(sigma_w2=[1.0], seeds=1, compute_dtype="bfloat16"))[0]]
    a, b = _population(runs, mnist1d)[0], _population(bf16, mnist1d)[0]
    assert a["run_id"] != b["run_id"]
    np.testing.assert_allclose(a["loss_curve"], b["loss_curve"], rtol=0.03)
    assert a["loss_curve"] != b["loss_curve"]


@pytest.mark.parametrize(("init", "learns"), [("zero", False), ("constant", False),
                                                ("gaussian", True)])
def test_only_a_random_init_breaks_the_symmetry_between_units(mnist1d, init, learns):
    runs = spec.expand(tiny_spec(init=init, sigma_w2=[1.0], lr=[0.1], seeds=1, steps=60))
    record = _population(runs, mnist1d)[0]
    diversity = np.asarray(record["diversity_curve"])
    if learns:
        assert diversity[0] > 0 and diversity[-1] != diversity[0]
    elif init == "zero":
        np.testing.assert_array_equal(diversity, 0.0)  # exactly: zero weights get zero gradients
    else:
        # Identical units get identical gradients up to float32 rounding: exactly 0 where the
        # CPU's matmul kernels treat every column alike (AVX-512 here), ~1e-8 of weights of
        # order one where they do not: far below the diversity of the symmetry figure's
        # smallest random init (σ_w² 1e-8: 1.2e-4), which does not learn within its budget.
        assert diversity[0] == 0.0 and np.max(diversity) < 1e-6
