"""Planning: memory-bounded populations, and the memory estimate against XLA's own analysis."""

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from research.common.errors import SpecError
from research.training import devices, engine, plan, spec, sweep
from research.training.data import load_dataset
from tests.helpers import tiny_spec


def test_budget_parsing():
    assert spec.parse_budget("auto") is None
    assert spec.parse_budget("512MB") == 512_000_000
    assert spec.parse_budget("1.5GB") == 1_500_000_000
    for bad in ("lots", "-1GB", "0"):
        with pytest.raises(SpecError, match="memory_budget"):
            spec.parse_budget(bad)


def test_grid_holds_exactly_the_expanded_runs_bucket_by_bucket():
    s = tiny_spec(depth=[2, 3], width=[8, 16], sigma_w2=[0.5, 1.0, 2.0], lr=[0.1, 0.2], seeds=3)
    grid = plan.Grid(s)
    expanded = spec.expand(s)
    from_grid = [r for slot in grid.slots(5) for r in grid.population(slot).runs]
    assert len(grid) == len(expanded) == len(from_grid)
    by_bucket = sorted(expanded, key=lambda r: (s.depth.index(r.depth), s.width.index(r.width)))
    assert from_grid == by_bucket  # same runs, same order within each bucket
    assert {r.static_key for r in grid.population(grid.slots(5)[0]).runs} == {
        expanded[0].static_key}


def test_populations_depend_on_the_spec_only():
    grid = plan.Grid(tiny_spec(width=[64], depth=[2, 3], seeds=5))  # 2 buckets of 10 runs
    slots = grid.slots(max_members=4)
    assert [len(s) for s in slots] == [4, 4, 2, 4, 4, 2]
    assert [s.number for s in plan.shard_slots(slots, plan.Shard(2, 3))] == [1, 4]


def test_a_million_run_grid_plans_without_building_its_runs():
    import tracemalloc

    s = tiny_spec(sigma_w2=[0.01 * i for i in range(1, 101)], lr=[0.001 * i for i in
                                                                 range(1, 101)], seeds=50,
                  depth=[2, 3])
    tracemalloc.start()
    grid = plan.Grid(s)
    slots = grid.slots(s.max_members)
    mine = plan.shard_slots(slots, plan.Shard(3, 8))
    text = plan.describe(grid, slots, mine, pd.DataFrame(), plan.Shard(3, 8))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(grid) == 1_000_000 and "1000000 runs in 2 buckets" in text
    assert peak < 5_000_000  # bytes: a list of ~2000 slots, not a million runs
    last = grid.population(slots[-1]).runs[-1]
    assert (last.depth, last.sigma_w2, last.lr, last.seed) == (3, 1.0, 0.1, 49)


def test_stored_rows_are_matched_to_the_spec_without_run_ids(tmp_path):
    s = tiny_spec(out=str(tmp_path / "a"))
    frame = sweep.run_sweep(s, progress=False).runs
    other = sweep.run_sweep(tiny_spec(out=str(tmp_path / "a"), lr=[0.07]), progress=False)
    assert len(other.runs) == 4
    everything = pd.concat([frame, other.runs])
    mask = plan.Grid(s).stored(everything)
    assert mask.sum() == 4 and set(everything[mask]["run_id"]) == set(frame["run_id"])


def test_piece_size_fits_the_budget_in_multiples_of_the_device_count():
    run = spec.expand(tiny_spec(width=[64]))[0]
    need = plan.member_bytes(run, 40, 10)
    assert plan.piece_size(run, 2, need * 5, 40, 10) == 4
    assert plan.piece_size(run, 2, need * 1000, 40, 10) == 1000
    with pytest.raises(SpecError, match="raise --memory-budget"):
        plan.piece_size(run, 2, need, 40, 10)


@pytest.mark.slow
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


@pytest.mark.parametrize(("depth", "width", "optimizer", "arch", "data_name"),
                         [(4, 32, "sgd", "mlp", "mnist1d"), (6, 128, "adam", "mlp", "mnist1d"),
                          pytest.param(3, 384, "momentum", "mlp", "mnist1d",
                                       marks=pytest.mark.slow),
                          pytest.param(4, 32, "adam", "cnn", "mnist1d", marks=pytest.mark.slow),
                          (4, 64, "sgd", "resmlp", "mnist1d"),
                          pytest.param(3, 32, "adam", "transformer", "mnist1d",
                                       marks=pytest.mark.slow),
                          (2, 32, "sgd", "rnn", "mnist1d"),
                          pytest.param(2, 32, "sgd", "resnet", "mnist1d", marks=pytest.mark.slow),
                          # 2-D data: 8 × 8 images, 64 positions per conv layer
                          pytest.param(4, 32, "adam", "cnn", "digits", marks=pytest.mark.slow),
                          pytest.param(2, 32, "sgd", "resnet", "digits", marks=pytest.mark.slow),
                          (3, 32, "adam", "transformer", "digits")])
def test_estimate_bounds_xla_memory_analysis(depth, width, optimizer, arch, data_name, mnist1d):
    """The estimate must cover what XLA says the compiled programs need per member (arguments,
    outputs and temporaries, per device × devices ÷ members), with no more than 6× to spare."""
    dataset = mnist1d if data_name == "mnist1d" else load_dataset(data_name)
    members = 8
    runs = spec.expand(tiny_spec(depth=[depth], width=[width], optimizer=optimizer, arch=arch,
                                 seeds=members, sigma_w2=[1.0], eval_size=1000,
                                 dataset=data_name))
    program, hp, data = engine.place(runs, dataset)
    init = engine.init_population.lower(hp, data, program).compile()
    state, _ = init(hp, data)
    chunk = engine.train_population_chunk.lower(state, hp, data, jnp.int32(0), program,
                                                1).compile()
    measured = 0.0
    for compiled in (init, chunk):
        m = compiled.memory_analysis()
        total = m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
        measured = max(measured, total * devices.device_count() / members)
    estimate = plan.member_bytes(runs[0], dataset.in_shape, dataset.out_dim)
    assert measured <= estimate <= 6 * measured


def test_the_plan_says_how_many_runs_train_and_in_which_populations():
    s = tiny_spec(depth=[2, 3], sigma_w2=[0.5, 1.0, 2.0], seeds=2, max_members=4)
    grid = plan.Grid(s)
    slots = grid.slots(s.max_members)  # per depth: 6 runs, populations of 4 and 2
    runs = spec.expand(s)
    # stored: all of depth 2's first population, one run of depth 3's second, one of another spec
    held = [r for r in runs if r.depth == 2][:4] + [r for r in runs if r.depth == 3][4:5]
    frame = pd.DataFrame([{**{f: getattr(r, f) for f in grid.fixed}, "run_id": r.run_id,
                           "seed": r.seed, **{a: getattr(r, a) for a in spec.AXES}}
                          for r in held])
    other = frame.iloc[:1].assign(sigma_w2=8.0, run_id="x")
    assert grid.missing(slots, pd.concat([frame, other])) == [0, 2, 4, 1]
    text = plan.describe(grid, slots, slots, pd.concat([frame, other]), plan.WHOLE)
    assert text.splitlines()[0].endswith("5 stored already; 7 to train, in 3 populations")
    assert "depth=2 width=8: 2 runs" in text and "depth=3 width=8: 5 runs" in text
    mine = plan.shard_slots(slots, plan.Shard(1, 2))  # populations 0 and 2
    assert plan.describe(grid, slots, mine, frame, plan.Shard(1, 2)).splitlines()[0].endswith(
        "4 to train, in 1 population (shard 1/2)")
