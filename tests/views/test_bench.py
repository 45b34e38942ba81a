"""The benchmark's code paths on a tiny case (its numbers are reported, never asserted)."""

import pytest

from research.cli import bench as bench_verb
from research.training import devices
from research.views import bench


def test_bench_rows_and_table():
    rows = bench.run(steps=20, baseline_networks=2, cases=(bench.Case("tiny", 8, 2, 4),))
    (row,) = rows
    assert row["networks"] == 4 and row["steps"] == 20
    assert row["engine_net_steps_per_s"] > 0 and row["speedup_vs_one_at_a_time"] > 0
    assert row["plain_loop_net_steps_per_s"] > 0 and row["speedup_vs_plain_loop"] > 0
    assert 0 < row["fraction_of_matmul_peak"]
    text = bench_verb.table(rows, devices.describe())
    assert "| tiny | 4 × 20 |" in text and "matmul peak" in text


@pytest.mark.slow
def test_compaction_case_really_diverges_half():
    result = bench.compaction(steps=20, networks=8)
    assert result["diverged"] == 4 and result["with_s"] > 0


@pytest.mark.slow
def test_compile_vs_depth_reports_every_arch_and_depth(capsys):
    rows = bench.compile_vs_depth(depths=(2, 4), archs=("mlp", "cnn"))
    assert [(r["arch"], r["data"]) for r in rows] == [
        ("mlp", "mnist1d"), ("cnn", "mnist1d"), ("mlp", "digits"), ("cnn", "digits")]
    assert all(r[f"depth {d}"] > 0 for r in rows for d in (2, 4))


def test_the_plain_loop_really_trains(mnist1d):
    """The reference is a real training loop: its loss falls, its σ reaches the weights."""
    train, loss = bench.plain_loop(mnist1d, width=32, depth=2, batch_size=32, steps=300)
    x, y = mnist1d.x[:500], mnist1d.y[:500]
    untrained = train(0, 1.0, 0.05, 0.0)  # lr 0: the init itself
    trained = train(0, 1.0, 0.05, 0.1)
    assert float(loss(trained, x, y)) < 0.8 * float(loss(untrained, x, y))
    w_small, w_large = train(0, 0.5, 0.0, 0.0)[0][0], train(0, 2.0, 0.0, 0.0)[0][0]
    assert float((w_large ** 2).mean() / (w_small ** 2).mean()) == pytest.approx(4.0, rel=1e-5)


@pytest.mark.slow
def test_flax_mlp_against_the_builtin_in_one_run():
    result = bench.flax_vs_builtin(steps=20, case=bench.Case("tiny", 8, 2, 4))
    assert result["networks"] == 4 and result["ratio"] > 0 and result["ratio_warm"] > 0
