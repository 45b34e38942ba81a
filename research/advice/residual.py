"""Residual growth measured through the real forward pass of a built-in residual type at init,
and the literature's branch scalings as named alternatives, each beside what was measured.

The forward of every residual type returns q: q[0] the mean square of the stream entering the
first block, q[l] after block l. Drawing the network (no training) and reading q is exact for
any block — two-layer MLP branches, attention, pre-LN, post-LN or BatchNorm — where a one-layer
q-map is not. Each seed draws its own network and reads its own EVAL_INPUTS training inputs, so
the spread over seeds holds both the draw's and the inputs' share, and the standard error of
q_L/q_0 is that spread over √seeds. SEEDS networks per point, one compiled program for every
point (σ's, α, per-tensor factors and seeds are traced): seconds on a CPU.

Per-tensor σ_w²: a weight that reads a linear input (the stream, or attention's mix of values:
`Advice.linear_inputs`) keeps its input's variance at σ_w² = 1, whatever the activation; the
ones that read an activation's output are critical at the activation's σ_w². The network is
drawn at one σ_w² and those tensors rescaled by √(1/σ_w²): the same draw as at σ_w² = 1 (the
standard parametrisation scales a unit draw by σ_w/√fan_in).
"""

import math

import jax
import numpy as np

from research.common.errors import SpecError
from research.networks import registry

SEEDS = 16  # networks per point: the growth's standard error is ≈ 1–3% of it at width 64
EVAL_INPUTS = 32  # training inputs per network, different for each seed
LINEAR_SIGMA_W2 = 1.0  # a linear map keeps its input's variance at σ_w² = 1


def measure_growth(arch: str, activation: str, depth: int, width: int, sigma_w2: float,
                   sigma_b2: float, norm: str = "none", residual: str = "fixed",
                   branch_scale: float = 1.0, seeds: int = SEEDS, dataset: str = "mnist1d",
                   linear_sigma_w2: float | None = None) -> dict:
    """q per block at init and q_L/q_0: {"q": [...], "growth", "se", "seeds"}."""
    return measure_growths(arch, activation, depth, width,
                           [(sigma_w2, sigma_b2, branch_scale, linear_sigma_w2)], norm,
                           residual, seeds, dataset)[0]


def _point(p) -> tuple[float, float, float, float | None]:
    """(σ_w², σ_b², α, σ_w² of the linear-input tensors or None: the same σ_w²)."""
    w2, b2, alpha, *linear = p
    return float(w2), float(b2), float(alpha), (linear[0] if linear else None)


def measure_growths(arch: str, activation: str, depth: int, width: int, points,
                    norm: str = "none", residual: str = "fixed", seeds: int = SEEDS,
                    dataset: str = "mnist1d") -> list[dict]:
    """`measure_growth` at each (σ_w², σ_b², branch_scale[, linear σ_w²]) of `points`: every
    network drawn and run by one compiled program, so a list costs one compile. "q" is the
    seeds' mean profile, "growth" the mean of each seed's q_L/q_0 and "se" its standard
    error."""
    # Imported here: a recommend for a plain stack never draws a network (no optax, no pandas).
    import jax.numpy as jnp

    from research.training import engine
    from research.training.data import load_dataset
    from research.training.spec import NORMS, RESIDUALS, SweepSpec, expand

    kind = registry.get(arch)
    if not kind.residual:
        raise SpecError("arch", arch, reason="residual growth is measured for residual types")
    if norm not in NORMS or norm not in kind.norms:
        raise SpecError("norm", norm, allowed=list(kind.norms))
    if residual not in RESIDUALS:
        raise SpecError("residual", residual, allowed=list(RESIDUALS))
    points = [_point(p) for p in points]
    runs = [run for w2, b2, alpha, _ in points for run in expand(SweepSpec(
        arch=(arch,), activation=(activation,), depth=(int(depth),), width=(int(width),),
        sigma_w2=(w2,), sigma_b2=(b2,), norm=(norm,), residual=(residual,),
        branch_scale=(alpha,), seeds=int(seeds), dataset=dataset, eval_size=EVAL_INPUTS))]
    data_set = load_dataset(dataset)
    data = engine.data_for(data_set, EVAL_INPUTS)
    program = engine.program_for(runs, data_set)
    linear = kind.advice.linear_inputs
    # per member: the factor on the linear-input tensors' std, and its own inputs
    factor = np.array([math.sqrt((w2 if lin is None else lin) / w2) if w2 > 0 else 1.0
                       for w2, _, _, lin in points for _ in range(seeds)], np.float32)
    picks = (np.arange(seeds)[:, None] * EVAL_INPUTS + np.arange(EVAL_INPUTS)) % len(data.x)
    x = jnp.asarray(np.asarray(data.x)[np.tile(picks, (len(points), 1))])

    def q_of(hp, f, x):
        params = engine.init_params(hp, data, program)
        params = {k: v * f if k in linear else v for k, v in params.items()}
        return kind.forward(params, x, program.model, hp)[1]

    q = np.asarray(jax.jit(jax.vmap(q_of))(engine.hyper_for(runs), jnp.asarray(factor), x),
                   float)
    out = []
    for i in range(len(points)):
        member = q[i * seeds:(i + 1) * seeds]
        with np.errstate(divide="ignore", invalid="ignore"):
            each = member[:, -1] / member[:, 0]
        se = float(np.std(each, ddof=1) / math.sqrt(seeds)) if seeds > 1 else math.nan
        out.append({"q": member.mean(axis=0).tolist(), "growth": float(np.mean(each)),
                    "se": se, "seeds": int(seeds)})
    return out


def growths(arch: str, activation: str, depth: int, width: int, norm: str,
            requests: dict) -> dict:
    """`measure_growth`'s {"q", "growth", "se", "seeds"} per label of `requests` {label:
    (residual, σ_w², σ_b², branch_scale[, linear σ_w²])}, in one compiled program per residual
    option: inv_sqrt_depth's α/√depth is fixed's gate with that α (layers.branch_gates), so the
    two share the fixed program."""
    groups: dict[str, dict] = {}
    for label, (residual, w2, b2, alpha, *linear) in requests.items():
        if residual == "inv_sqrt_depth":
            residual, alpha = "fixed", alpha / math.sqrt(depth)
        groups.setdefault(residual, {})[label] = _point((w2, b2, alpha, *linear))
    out = {}
    for residual, group in groups.items():
        points = sorted(set(group.values()), key=lambda p: tuple(
            math.inf if v is None else v for v in p))
        found = dict(zip(points, measure_growths(arch, activation, depth, width, points, norm,
                                                 residual), strict=True))
        out.update({label: found[point] for label, point in group.items()})
    return out


def alternatives(arch: str, depth: int, branches_per_block: int) -> list[dict]:
    """The literature's branch scalings for N = depth blocks (L = branches): each with its
    constants and what its paper reports, attributed to it (`growth_claim`: the claim about
    the stream's growth at init that a measurement can check, or None)."""
    n, big_l = int(depth), int(depth) * branches_per_block
    out = [
        {"name": f"1/√{big_l} on every branch (GPT-2; Hayou et al. 2021)",
         "alpha": 1 / math.sqrt(big_l),
         "reports": "the papers report O(1) growth of the stream at any depth",
         "growth_claim": "bounded"},
        {"name": "Fixup (Zhang et al. 2019)", "alpha": None,
         "reports": "each branch's last layer zero, the others ×L^(-1/(2m-2)): the stream is "
                    "the input layer's output at init (q_L/q_0 = 1 exactly), no norm",
         "growth_claim": None},
        {"name": "SkipInit (De & Smith 2020)", "alpha": 0.0,
         "reports": "a learned α from 0: q_L/q_0 = 1 exactly at init", "growth_claim": None},
    ]
    if arch == "transformer":
        out += [
            {"name": "DeepNorm (Wang et al. 2022)", "alpha": (2 * n) ** 0.25,
             "beta": (8 * n) ** -0.25,
             "reports": f"post-LN as x ← LN(α·x + f(x)), α = (2N)^¼ = {(2 * n) ** 0.25:.3g}, "
                        f"FFN, value and output weights ×β = (8N)^−¼ = {(8 * n) ** -0.25:.3g}; "
                        "the paper reports updates bounded independently of depth",
             "growth_claim": None},
            {"name": "T-Fixup (Huang et al. 2020)", "alpha": None,
             "reports": f"no LN, no warm-up: Xavier, value/output and MLP weights "
                        f"×0.67·N^(−1/4) = {0.67 * n ** -0.25:.3g}, embeddings ×(9N)^(−1/4); "
                        "the paper reports training without LN", "growth_claim": None},
            {"name": "μP attention (Yang et al. 2021)", "alpha": None,
             "reports": "attention logits ×1/d instead of 1/√d (the `mup` parametrisation): "
                        "logits O(1) as width grows", "growth_claim": None},
        ]
    return out
