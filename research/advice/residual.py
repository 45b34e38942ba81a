"""Residual growth measured through the real forward pass of a built-in residual type at init,
and the literature's branch scalings as named alternatives with what each predicts.

The forward of every residual type returns q: q[0] the mean square of the stream entering the
first block, q[l] after block l. Drawing the network (no training) and reading q is exact for
any block — two-layer MLP branches, attention, pre-LN or post-LN — where a one-layer q-map is
not. A few hundred eval inputs of the real data, a few seeds: seconds on a CPU.
"""

import math

import jax
import numpy as np

from research.common.errors import SpecError
from research.networks import registry

EVAL_INPUTS = 256


def measure_growth(arch: str, activation: str, depth: int, width: int, sigma_w2: float,
                   sigma_b2: float, norm: str = "none", residual: str = "fixed",
                   branch_scale: float = 1.0, seeds: int = 2, dataset: str = "mnist1d") -> dict:
    """q per block at init, averaged over seeds, and q_L/q_0: {"q": [...], "growth": float}."""
    return measure_growths(arch, activation, depth, width, [(sigma_w2, sigma_b2, branch_scale)],
                           norm, residual, seeds, dataset)[0]


def measure_growths(arch: str, activation: str, depth: int, width: int, points,
                    norm: str = "none", residual: str = "fixed", seeds: int = 2,
                    dataset: str = "mnist1d") -> list[dict]:
    """`measure_growth` at each (σ_w², σ_b², branch_scale) of `points`: every network drawn and
    run by one compiled program (σ's, α and seeds are traced), so a list costs one compile."""
    # Imported here: a recommend for a plain stack never draws a network (no optax, no pandas).
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
    runs = [run for w2, b2, alpha in points for run in expand(SweepSpec(
        arch=(arch,), activation=(activation,), depth=(int(depth),), width=(int(width),),
        sigma_w2=(float(w2),), sigma_b2=(float(b2),), norm=(norm,), residual=(residual,),
        branch_scale=(float(alpha),), seeds=int(seeds), dataset=dataset,
        eval_size=EVAL_INPUTS))]
    data_set = load_dataset(dataset)
    data = engine.data_for(data_set, EVAL_INPUTS)
    program = engine.program_for(runs, data_set)

    def q_of(hp, x):
        return kind.forward(engine.init_params(hp, data, program), x, program.model, hp)[1]

    q = np.asarray(jax.jit(jax.vmap(q_of, in_axes=(0, None)))(engine.hyper_for(runs),
                                                               data.x_eval), float)
    out = []
    for i in range(len(points)):
        mean = q[i * seeds:(i + 1) * seeds].mean(axis=0)
        growth = float(mean[-1] / mean[0]) if mean[0] > 0 else math.nan
        out.append({"q": mean.tolist(), "growth": growth})
    return out


def growths(arch: str, activation: str, depth: int, width: int, norm: str,
            requests: dict) -> dict:
    """`measure_growth`'s {"q", "growth"} per label of `requests` {label: (residual, σ_w², σ_b²,
    branch_scale)}, in one
    compiled program per residual option: inv_sqrt_depth's α/√depth is fixed's gate with that
    α (layers.branch_gates), so the two share the fixed program."""
    groups: dict[str, dict] = {}
    for label, (residual, w2, b2, alpha) in requests.items():
        if residual == "inv_sqrt_depth":
            residual, alpha = "fixed", alpha / math.sqrt(depth)
        groups.setdefault(residual, {})[label] = (w2, b2, alpha)
    out = {}
    for residual, group in groups.items():
        points = sorted(set(group.values()))
        found = dict(zip(points, measure_growths(arch, activation, depth, width, points, norm,
                                                 residual), strict=True))
        out.update({label: found[point] for label, point in group.items()})
    return out


def alternatives(arch: str, depth: int, branches_per_block: int, norm: str) -> list[dict]:
    """The literature's branch scalings for N = depth blocks (L = branches), each with its
    constants and what it predicts for the stream's variance at init."""
    n, big_l = int(depth), int(depth) * branches_per_block
    out = [
        {"name": "1/sqrt(2L) branch scaling", "alpha": 1 / math.sqrt(big_l),
         "predicts": f"α = 1/√{big_l} on each of the {big_l} branches: the variance adds "
                     "≈ q·(1 + c/L) per branch, O(1) growth at any depth (GPT-2; Hayou et al. "
                     "2021 stable ResNet)"},
        {"name": "Fixup (Zhang et al. 2019)", "alpha": None,
         "predicts": "last layer of each branch zero, the others scaled by L^(-1/(2m-2)): the "
                     "stream is exactly the embedding at init (q_L/q_0 = 1), no normalisation"},
        {"name": "SkipInit (De & Smith 2020)", "alpha": 0.0,
         "predicts": "a learnable α initialised to 0: q_L/q_0 = 1 at init"},
    ]
    if arch == "transformer":
        out += [
            {"name": "DeepNorm (Wang et al. 2022)", "alpha": (2 * n) ** 0.25,
             "beta": (8 * n) ** -0.25,
             "predicts": f"post-LN with the residual up-weighted, x ← LN(α x + f(x)), "
                         f"α = (2N)^¼ = {(2 * n) ** 0.25:.3g}, and the FFN/value/output "
                         f"weights scaled by β = (8N)^−¼ = {(8 * n) ** -0.25:.3g}: the update "
                         "size is bounded independently of depth (encoder-only)"},
            {"name": "T-Fixup (Huang et al. 2020)", "alpha": None,
             "predicts": f"no LN, no warm-up: Xavier init, value/output and MLP weights scaled "
                         f"by 0.67·N^(−1/4) = {0.67 * n ** -0.25:.3g}, embeddings by "
                         "(9N)^(−1/4): the stream's growth is bounded by design"},
            {"name": "μP attention (Yang et al. 2021)", "alpha": None,
             "predicts": "attention logits scaled by 1/d instead of 1/√d (the `mup` "
                         "parametrisation): logits stay O(1) as width grows"},
        ]
    if norm != "none":
        out.append({"name": f"{norm} as built", "alpha": 1.0,
                    "predicts": "pre-LN: each branch sees a unit-variance input, so the stream "
                                "grows additively (≈ linearly in depth), not geometrically; "
                                "post-LN: the stream is renormalised every block (q ≈ 1)"})
    return out
