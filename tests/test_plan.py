"""Planning: memory-bounded populations, and the memory estimate against XLA's own analysis."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research import devices, engine, plan, spec, sweep
from research.data import load_dataset
from research.errors import SpecError
from tests.helpers import tiny_spec


def test_budget_parsing():
    assert plan.parse_budget("auto") is None
    assert plan.parse_budget("512MB") == 512_000_000
    assert plan.parse_budget("1.5GB") == 1_500_000_000
    for bad in ("lots", "-1GB", "0"):
        with pytest.raises(SpecError, match="memory_budget"):
            plan.parse_budget(bad)


def test_populations_depend_on_the_spec_only():
    runs = spec.expand(tiny_spec(width=[64], depth=[2, 3], seeds=5))  # 2 buckets of 10 runs
    pops = plan.populations(runs, max_members=4)
    assert [len(p.runs) for p in pops] == [4, 4, 2, 4, 4, 2]
    assert sorted(r.run_id for p in pops for r in p.runs) == sorted(r.run_id for r in runs)


def test_piece_size_fits_the_budget_in_multiples_of_the_device_count():
    run = spec.expand(tiny_spec(width=[64]))[0]
    need = plan.member_bytes(run, 40, 10)
    assert plan.piece_size(run, 2, need * 5, 40, 10) == 4
    assert plan.piece_size(run, 2, need * 1000, 40, 10) == 1000
    with pytest.raises(SpecError, match="raise --memory-budget"):
        plan.piece_size(run, 2, need, 40, 10)


def test_a_small_budget_trains_in_pieces_with_the_same_results(tmp_path):
    s = tiny_spec(seeds=4, out=str(tmp_path / "whole"))
    whole = sweep.run_sweep(s, progress=False).runs
    need = plan.member_bytes(spec.expand(s)[0], 40, 10)
    pieces = sweep.run_sweep(spec.from_dict({"out": str(tmp_path / "pieces"),
                                             "memory_budget": f"{need * 2.5 / 1e3}KB"}, s),
                             progress=False).runs
    cols = ["run_id", "outcome", "final_loss", "loss_curve"]
    a = whole.sort_values("run_id")[cols].reset_index(drop=True)
    b = pieces.sort_values("run_id")[cols].reset_index(drop=True)
    assert (a["run_id"] == b["run_id"]).all() and (a["outcome"] == b["outcome"]).all()
    np.testing.assert_allclose(np.stack(a["loss_curve"]), np.stack(b["loss_curve"]),
                               rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize(("depth", "width", "optimizer"),
                         [(4, 32, "sgd"), (6, 128, "adam"), (3, 384, "momentum")])
def test_estimate_bounds_xla_memory_analysis(depth, width, optimizer):
    """The estimate must cover what XLA says the compiled programs need per member (arguments,
    outputs and temporaries, per device × devices ÷ members), with no more than 6× to spare."""
    dataset = load_dataset("mnist1d")
    members = 8
    runs = spec.expand(tiny_spec(depth=[depth], width=[width], optimizer=optimizer,
                                 seeds=members, sigma_w2=[1.0], eval_size=1000))
    program = engine.program_for(runs[0], dataset)
    sharded, replicated = devices.member_sharding()
    hp = jax.device_put(engine.hyper_for(runs), sharded)
    data = jax.device_put(engine.data_for(dataset, 1000), replicated)
    init = engine.init_population.lower(hp, data, program).compile()
    state, _ = init(hp, data)
    chunk = engine.train_population_chunk.lower(state, hp, data, jnp.int32(0), program,
                                                1).compile()
    measured = 0.0
    for compiled in (init, chunk):
        m = compiled.memory_analysis()
        total = m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
        measured = max(measured, total * devices.device_count() / members)
    estimate = plan.member_bytes(runs[0], 40, 10)
    assert measured <= estimate <= 6 * measured
