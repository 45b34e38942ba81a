"""pad_depth: a sweep's depths in one compiled program at the largest, the extra hidden layers
masked to identities. A member must start from exactly its own network and train as its own
program trains it, and the stored rows must be those of the unpadded sweep."""

import dataclasses

import jax
import numpy as np
import pandas as pd
import pytest

from research.cli import main as cli
from research.networks import registry
from research.training import engine, plan, presets, spec, store, sweep
from tests.helpers import tiny_spec

DEPTHS = [2, 3, 5]


def _by_depth(s: spec.SweepSpec) -> dict[int, list]:
    runs = spec.expand(s)
    return {d: [r for r in runs if r.depth == d] for d in s.depth}


@pytest.mark.parametrize("arch,init", [
    ("mlp", "gaussian"), pytest.param("mlp", "orthogonal", marks=pytest.mark.slow),
    pytest.param("cnn", "delta_orthogonal", marks=pytest.mark.slow)])
def test_a_padded_member_starts_from_its_own_network(mnist1d, arch, init):
    s = tiny_spec(arch=arch, depth=DEPTHS, init=init, sigma_w2=[0.5, 2.0], seeds=2,
                  pad_depth=True)
    deepest = max(DEPTHS)
    for depth, runs in _by_depth(s).items():
        own_program, own_hp, data = engine.place(runs, mnist1d)
        own, own_diag = jax.device_get(engine.init_population(own_hp, data, own_program))
        program, hp, data = engine.place(runs, mnist1d, pad_to=deepest)
        assert program.model.depth == deepest
        padded, diag = jax.device_get(engine.init_population(hp, data, program))
        for name, value in own.params.items():
            got = padded.params[name]
            if name in ("w_hidden", "b_hidden"):
                assert got.shape[1] == deepest - 1
                got = got[:, :depth - 1]
            np.testing.assert_array_equal(got, value, err_msg=name)  # bit for bit
        for i in range(len(runs)):
            layers = registry.get(arch).pad.trim(
                {k: diag[k][i] for k in ("init_q", "init_grad_norm")}, depth)
            for k, v in layers.items():
                np.testing.assert_allclose(v, own_diag[k][i], rtol=1e-5, atol=1e-7, err_msg=k)
        for k in ("initial_loss", "initial_acc", "initial_diversity", "init_jac"):
            np.testing.assert_allclose(diag[k], own_diag[k], rtol=1e-5, atol=1e-7, err_msg=k)


def _train(s: spec.SweepSpec, runs, mnist1d) -> list[dict]:
    return sweep.train(plan.Population(0, 0, tuple(runs)), mnist1d, s)


@pytest.mark.parametrize("optimizer,extra", [
    ("sgd", {}),
    pytest.param("adam", {"lr": [0.005, 1e4], "weight_decay": [0.0, 0.1],
                          "clip_norm": [0.0, 1.0]}, marks=pytest.mark.slow)])
def test_a_padded_member_trains_as_its_own_program(mnist1d, optimizer, extra):
    """Losses, outcomes and divergence steps as the per-depth programs give them; with Adam,
    decay and clipping too. The rates are tame or far too large (those members diverge):
    between the two, chaotic training amplifies float32 rounding (a fused `where` is enough)
    until outcomes differ, as between any two programs."""
    fields = {"sigma_w2": [0.5, 1.5], "lr": [0.05, 1e4], **extra}
    # One chunk, no compaction: fewer programs to compile (compaction is covered by the CLI test).
    s = tiny_spec(depth=DEPTHS, optimizer=optimizer, steps=200, log_every=20, chunk_steps=200,
                  compact=False, seeds=1, **fields)
    padded_spec = dataclasses.replace(s, pad_depth=True)
    outcomes = set()
    for runs in _by_depth(s).values():
        own, padded = _train(s, runs, mnist1d), _train(padded_spec, runs, mnist1d)
        for a, b in zip(own, padded, strict=True):
            assert a["run_id"] == b["run_id"]
            assert (a["outcome"], a["diverged_step"], a["converged_step"]) == (
                b["outcome"], b["diverged_step"], b["converged_step"])
            np.testing.assert_allclose(b["loss_curve"], a["loss_curve"], rtol=2e-5, atol=1e-6)
            np.testing.assert_allclose(b["acc_curve"], a["acc_curve"], atol=1e-6)
            for k in ("init_q", "init_grad_norm"):
                assert len(b[k]) == len(a[k])
                np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-7)
            outcomes.add(a["outcome"])
    assert "diverged" in outcomes and len(outcomes) >= 2  # the comparison covers both kinds


# 21 s: the CLI path end to end; the equality it checks is test_a_padded_member_trains_as_its_own
# _program's (engine) and the ids' is test_pad_depth_is_an_execution_choice_not_part_of_run_ids
@pytest.mark.slow
def test_cli_sweep_with_pad_depth_stores_the_same_runs(tmp_path):
    spec_file = tmp_path / "pad.toml"
    spec_file.write_text(presets.to_toml(tiny_spec(depth=DEPTHS, max_members=2, steps=20,
                                                   chunk_steps=10)))
    for out, flags in (("plain", []), ("padded", ["--pad-depth", "true"])):
        assert cli.main(["sweep", str(spec_file), "--quiet", "--no-plot", "--out",
                         str(tmp_path / out), *flags]) == 0
    plain, padded = (store.load_runs(tmp_path / out).sort_values("run_id")
                     .reset_index(drop=True) for out in ("plain", "padded"))
    assert list(plain["run_id"]) == list(padded["run_id"])
    assert list(plain["outcome"]) == list(padded["outcome"])
    def populations(out):  # part names: the population's label, then a content hash
        return sorted(p.name.rsplit("-", 1)[0] for p in store.part_files(tmp_path / out))

    assert populations("plain") == populations("padded")
    pd.testing.assert_series_equal(plain["init_q"].map(len), padded["init_q"].map(len))
    for name in ("final_loss", "initial_loss"):
        np.testing.assert_allclose(padded[name], plain[name], rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("argv,reason", [
    (["--arch", "resmlp"], "not resmlp"),
    (["--arch", "rnn"], "not rnn"),
    (["--init", "lsuv"], "init lsuv"),
])
def test_pad_depth_is_refused_where_it_would_change_the_network(tmp_path, capsys, argv,
                                                                 reason):
    spec_file = tmp_path / "pad.toml"
    spec_file.write_text(presets.to_toml(tiny_spec(depth=DEPTHS)))
    try:
        code = cli.main(["sweep", str(spec_file), "--pad-depth", "true", *argv])
    except SystemExit as stop:
        code = stop.code
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "pad_depth" in err and reason in err, err
    assert not (tmp_path / "runs").exists()


def test_pad_depth_is_an_execution_choice_not_part_of_run_ids():
    plain = spec.expand(tiny_spec(depth=DEPTHS))
    padded = spec.expand(tiny_spec(depth=DEPTHS, pad_depth=True))
    assert [r.run_id for r in plain] == [r.run_id for r in padded]
    s = tiny_spec(depth=DEPTHS, pad_depth=True)
    run = spec.expand(s)[0]
    assert run.depth == 2
    # memory and work are those of the padded program
    assert plan.member_bytes(sweep._as_run(run, s), 40, 10) > plan.member_bytes(run, 40, 10)


def test_the_bench_depth_table_reads_the_timelines():
    from research.cli.bench import depths_table

    row = {"wall_s": 10.0, "cpu_s": 12.0, "compile_s": 8.0, "train_s": 1.0}
    text = depths_table({"depths": [2, 4, 32], "networks": 48, "steps": 500, "stack_ratio": 2.1,
                         "per_depth": row, "padded": {**row, "wall_s": 5.0}})
    assert "| one per depth (3) | 10.0 | 12.0 | 8.0 | 1.0 |" in text
    assert "| pad_depth (1) | 5.0 |" in text and "31 hidden layers" in text


def test_one_init_program_serves_every_depth_of_a_sweep(mnist1d):
    """A sweep of several depths draws each population's network and its init-time
    diagnostics with one init program, at the deepest: the same networks (so the same training,
    bit for bit) and diagnostics as each depth's own init program gives."""
    s = tiny_spec(depth=[2, 5], sigma_w2=[0.5, 2.0], seeds=1, steps=40, chunk_steps=20)
    compiled = {}
    for depth, runs in _by_depth(s).items():
        assert sweep.init_pad_to(s, runs[0]) == 5
        shared = sweep.train(plan.Population(0, 0, tuple(runs)), mnist1d, s,
                             compiled=compiled)
        alone_spec = dataclasses.replace(s, depth=(depth,))
        assert sweep.init_pad_to(alone_spec, runs[0]) is None
        alone = _train(alone_spec, runs, mnist1d)
        for a, b in zip(alone, shared, strict=True):
            np.testing.assert_array_equal(b["loss_curve"], a["loss_curve"])
            for k in ("init_q", "init_grad_norm"):
                assert len(b[k]) == len(a[k])
                np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-7)
            for k in ("initial_loss", "init_jac_mean", "init_jac_max"):
                np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-7)
    assert len(compiled) == 1  # one init program for both depths
    lsuv = tiny_spec(depth=DEPTHS, init="lsuv")
    assert sweep.init_pad_to(lsuv, spec.expand(lsuv)[0]) is None  # LSUV depends on the depth
