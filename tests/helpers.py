"""Small specs shared by the tests: tiny enough to compile and train in seconds."""

from research.training import engine, spec

TINY = {
    "name": "tiny", "activation": "tanh", "depth": [3], "width": [8],
    "sigma_w2": [0.5, 2.0], "sigma_b2": [0.05], "lr": [0.05], "optimizer": "sgd",
    "steps": 40, "log_every": 10, "chunk_steps": 20, "seeds": 2, "batch_size": 16,
    "eval_size": 200, "target_acc": 0.2,
}


def tiny_spec(**overrides) -> spec.SweepSpec:
    return spec.from_dict({**TINY, **overrides})


def one_member(data, **fields):
    """The first run of a tiny spec (σ_w² 1 unless given) on `data`: its RunSpec, compiled
    program's static description, device data and traced scalars."""
    run = spec.expand(tiny_spec(seeds=1, **{"sigma_w2": [1.0], **fields}))[0]
    program = engine.program_for([run], data)
    return run, program, engine.data_for(data, run.eval_size), engine.hyper_of(run)
