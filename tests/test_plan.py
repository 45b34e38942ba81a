"""Planning: memory-bounded populations, and the memory estimate against XLA's own analysis."""

import jax
import jax.numpy as jnp
import pytest

from research import devices, engine, plan, spec
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


def test_a_small_budget_splits_a_bucket_into_populations_that_fit():
    runs = spec.expand(tiny_spec(width=[64], seeds=8))  # 16 runs, one bucket
    need = plan.member_bytes(runs[0], 40, 10)
    pops = plan.populations(runs, 512, 2, budget=need * 5, in_dim=40, out_dim=10)
    assert [len(p.runs) for p in pops] == [4, 4, 4, 4]
    assert all(p.size * need <= need * 5 for p in pops)
    assert sorted(r.run_id for p in pops for r in p.runs) == sorted(r.run_id for r in runs)
    assert len(plan.populations(runs, 512, 2, budget=None)) == 1


def test_a_budget_below_one_member_per_device_is_an_error():
    runs = spec.expand(tiny_spec(width=[64]))
    need = plan.member_bytes(runs[0], 40, 10)
    with pytest.raises(SpecError, match="raise --memory-budget"):
        plan.populations(runs, 512, 2, budget=need, in_dim=40, out_dim=10)


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
