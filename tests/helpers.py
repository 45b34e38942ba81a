"""Small specs shared by the tests: tiny enough to compile and train in seconds."""

from research.training import spec

TINY = {
    "name": "tiny", "activation": "tanh", "depth": [3], "width": [8],
    "sigma_w2": [0.5, 2.0], "sigma_b2": [0.05], "lr": [0.05], "optimizer": "sgd",
    "steps": 40, "log_every": 10, "chunk_steps": 20, "seeds": 2, "batch_size": 16,
    "eval_size": 200, "target_acc": 0.2,
}


def tiny_spec(**overrides) -> spec.SweepSpec:
    return spec.from_dict({**TINY, **overrides})
