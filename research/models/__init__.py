"""Architectures by name. Each module exposes `init(key, hp, cfg)` and `apply(params, x, cfg)`."""

from research.models import mlp

MODELS = {"mlp": mlp}
