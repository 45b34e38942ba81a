"""Architectures by name, one module each, all with the same four functions:

`init(key, hp, cfg)` (hp: the member's traced scalars), `forward(params, x, cfg) -> (out, q)`,
`apply(params, x, cfg)` and `weight_grad_norms(grads)`.
"""

from research.models import mlp

MODELS = {"mlp": mlp}
