"""The benchmark's code paths on a tiny case (its numbers are reported, never asserted)."""

import json
import sys
import threading

import pytest

from research.cli import bench as bench_verb
from research.measure import bench, loops
from research.training import devices, timing


@pytest.mark.slow  # four fresh processes, each compiling: over a minute on 2 cores
def test_bench_rows_and_table():
    rows = bench.run(steps=20, baseline_networks=2, cases=(bench.Case("tiny", 8, 2, 4),))
    (row,) = rows
    assert row["networks"] == 4 and row["steps"] == 20
    t = row["sweep"]
    # The timeline is in order, and its phases fit inside the measured wall time.
    assert 0 < t["imports"] <= t["data"] <= t["plan"] <= t["init"] <= t["first_step"]
    assert t["first_step"] + t["train_s"] <= t["stored"] <= t["wall_s"]
    assert t["compile_s"] > 0  # threads compile side by side: a sum, not a span
    assert row["plain_loop_s"] > 0 and row["speedup_vs_plain_loop"] > 0
    assert row["one_at_a_time_s"] > 0
    assert 0 < row["peak_fraction_process"] < row["peak_fraction_training"]
    text = bench_verb.table(rows, devices.describe())
    assert "| tiny | 4 × 20 |" in text and "matmul peak" in text


def test_timing_counts_compiles_and_process_age():
    """A fresh jit compile is counted (and a cached call is not); marks keep their first
    value and grow with the process's age."""
    import jax
    import jax.numpy as jnp

    timing.watch_compiles()
    before = timing.compile_seconds()
    f = jax.jit(lambda x: jnp.tanh(x) @ x.T + 0.123456)
    f(jnp.ones((3, 3)))
    compiled = timing.compile_seconds()
    assert compiled > before
    f(jnp.ones((3, 3)))
    assert timing.compile_seconds() == compiled
    # A compile in another thread counts in the total, not in this thread's own seconds.
    mine = timing.compile_seconds(this_thread=True)
    other = threading.Thread(target=lambda: jax.jit(lambda x: x * 7.5 - 1)(jnp.ones(5)))
    other.start()
    other.join()
    assert timing.compile_seconds() > compiled and timing.compile_seconds(this_thread=True) == mine
    timing.mark("test_mark")
    first = timing.timeline()["test_mark"]
    timing.mark("test_mark")
    assert timing.timeline()["test_mark"] == first <= round(timing.process_age(), 3)


def test_plain_loop_process_reports_its_phases(capsys):
    """The baseline's own process entry point, run in this one: one JSON line, per phase."""
    run = {"seed": 0, "width": 8, "depth": 2, "batch_size": 16, "steps": 10,
           "sigma_w2": 1.0, "sigma_b2": 0.05, "lr": 0.01}
    assert loops.main(["plain", json.dumps({"runs": [run, {**run, "seed": 1}]})]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["networks"] == 2 and out["train_s"] > 0 and out["compile_s"] >= 0


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
    train, loss = loops.plain_loop(mnist1d, width=32, depth=2, batch_size=32, steps=300)
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


def test_process_times_are_medians_of_fresh_processes():
    py = sys.executable
    med = bench.median_process_times({"quick": [py, "-c", "pass"],
                                      "slow": [py, "-c", "import time; time.sleep(0.3)"]}, 3)
    assert 0 < med["quick"]["wall_s"] and med["slow"]["wall_s"] >= 0.3
    # sleeping costs no CPU: the CPU times are the children's own, not the wall
    assert med["slow"]["cpu_s"] < med["slow"]["wall_s"] - 0.2
    assert med["quick"]["cpu_s"] > 0
    argv = bench.RECOMMEND_ARGV
    assert argv[:1] == ("recommend",) and "recommend" in bench_verb.BENCH_PARTS
