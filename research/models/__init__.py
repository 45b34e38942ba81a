"""Architectures by name, one module each, all with the same four functions:

`init(key, hp, cfg)` (hp: the member's traced scalars), `forward(params, x, cfg) -> (out, q)`,
`apply(params, x, cfg)`, `weight_grad_norms(grads)` and `unit_diversity(params)`.
"""

from research.models import mlp

MODELS = {"mlp": mlp}
