"""The robustness standard for a figure's headline claims: a claim is re-counted at the
neighbouring targets and budget, and against one net more or less in any cell it counts, and
says how many seeds stand behind each condition it compares.

* **Neighbouring targets**: the target moved by ±20% of its distance to the nearer end of
  [0, 1] (accuracy 0.25 → 0.2 and 0.3; 0.9 → 0.88 and 0.92; a loss ratio, near 0: ×0.8 and
  ×1.2). A sweep with early stop froze each net at its first evaluation at the target, so the
  higher target is not measured there (said so, not counted).
* **A shorter budget**: 10% fewer steps, counted from each net's logged curve up to that step.
* **One net**: the verdict recomputed with one net's outcome flipped in any one cell; a claim
  that one net can change is decided by that net.
* **Seeds**: a claim comparing conditions needs `ENOUGH_SEEDS` nets in each; with fewer it is
  marked underpowered, whatever its intervals say.

A claim is *robust* when its verdict is the same at every neighbour and under every single
flip, with enough seeds; *fragile* otherwise, the summary naming what changes it. Claims
whose verdict is no count (a slope, an order of medians) use the same summary with their own
neighbours (`summary`)."""

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

TARGET_SHIFT = 0.2
BUDGET_CUT = 0.1
ENOUGH_SEEDS = 8


@dataclass(frozen=True)
class Variant:
    """A way to count: the accuracy target (or loss ratio) and the step budget."""

    name: str
    target: float
    steps: int
    measured: bool = True  # False: a target above the one early stop froze the nets at


NOT_MEASURED = "not measured (early stop froze each net at the target)"


def neighbour_targets(target: float) -> tuple[float, float]:
    """The target ∓ TARGET_SHIFT of its distance to the nearer end of [0, 1]."""
    room = min(target, 1.0 - target) if target <= 1 else target
    step = TARGET_SHIFT * room
    return round(target - step, 6), round(target + step, 6)


def variants(table: pd.DataFrame) -> list[Variant]:
    """As run, at the two neighbouring targets, and with the budget cut by BUDGET_CUT."""
    target = _target(table)
    steps = int(table["steps"].max())
    lo, hi = neighbour_targets(target)
    frozen = "early_stop" in table and bool(table["early_stop"].any())
    return [Variant("as run", target, steps), Variant(f"target {lo:g}", lo, steps),
            Variant(f"target {hi:g}", hi, steps, measured=not frozen),
            Variant(f"{int(round((1 - BUDGET_CUT) * steps))} steps", target,
                    int(round((1 - BUDGET_CUT) * steps)))]


def _classification(table: pd.DataFrame) -> bool:
    return bool(np.isfinite(table["final_train_acc"].astype(np.float64)).all())


def _target(table: pd.DataFrame) -> float:
    column = "target_acc" if _classification(table) else "target_loss_ratio"
    return float(table[column].iloc[0])


def converged(table: pd.DataFrame, variant: Variant, criterion: str | None = None) -> pd.Series:
    """Each net's outcome counted at `variant` from its logged curve: under `reached`, the
    target met at a logged step within the budget; under `final`, met at the last logged step
    within it and not diverged before it. The criterion is the table's own unless given."""
    criterion = criterion or (str(table["criterion"].iloc[0]) if "criterion" in table
                              else "final")
    classification = _classification(table)
    out = []
    for row in table.itertuples():
        steps = np.asarray(row.curve_steps)
        keep = steps <= variant.steps
        if classification:
            good = np.asarray(row.acc_curve, np.float64)[keep] >= variant.target
        else:
            good = (np.asarray(row.loss_curve, np.float64)[keep]
                    <= variant.target * row.initial_loss)
        diverged = 0 <= row.diverged_step <= variant.steps
        if criterion == "reached":
            out.append(bool(good.any()))
        else:
            out.append(bool(len(good) and good[-1] and not diverged))
    return pd.Series(out, table.index)


def cells(table: pd.DataFrame, ok: pd.Series, by: Sequence[str]) -> pd.DataFrame:
    """Per cell of `by`: k (nets that count as converged) and n."""
    return (table.assign(ok=ok.astype(int)).groupby(list(by))["ok"]
            .agg(k="sum", n="size").reset_index())


def flips(counts: pd.DataFrame):
    """Every count table with one net's outcome flipped in one cell: (label, table)."""
    for i, row in enumerate(counts.itertuples()):
        keys = ", ".join(f"{NAMES.get(c, c)} {_text(getattr(row, c))}"
                         for c in counts.columns[:-2])
        for dk in (-1, 1):
            if 0 <= row.k + dk <= row.n:
                flipped = counts.copy()
                flipped.loc[flipped.index[i], "k"] = row.k + dk
                yield f"{keys}: {row.k}/{row.n} → {row.k + dk}/{row.n}", flipped


@dataclass(frozen=True)
class Claim:
    """A headline claim counted over the nets of `table`: `verdict` maps the per-cell counts
    (the `by` columns, k, n) to the words the claim stands on; `compared` is how many
    conditions it sets against each other (seeds are checked per condition where ≥ 2);
    `strength` orders verdicts (a comparison: effect above trend above no difference), so that
    only a weaker verdict makes the claim fragile; without it any other verdict does."""

    name: str
    table: pd.DataFrame
    by: tuple[str, ...]
    verdict: Callable[[pd.DataFrame], str]
    compared: int = 2
    strength: Callable[[str], float] | None = None


def evaluate(claim: Claim) -> dict:
    """The claim's facts under the standard: `robust_NAME` (the one-line summary the pages
    print), `robust_NAME_verdict` and `robust_NAME_at_<variant>` (each verdict), `_one_net`
    (the first flip that weakens it, or "none"), `_seeds` (the fewest nets in a cell) and
    `_standing` (robust, fragile, underpowered or fragile and underpowered)."""
    every = variants(claim.table)
    counted = {v: cells(claim.table, converged(claim.table, v), claim.by)
               for v in every if v.measured}
    as_run = next(iter(counted))
    verdict = claim.verdict(counted[as_run])
    at = {v.name: claim.verdict(c) for v, c in counted.items()}

    def weaker(word: str) -> bool:
        return is_weaker(word, verdict, claim.strength)

    moved = [f"{name}: {word}" for name, word in at.items() if word != verdict]
    weakened = [f"{name}: {word}" for name, word in at.items() if weaker(word)]
    one = next((label for label, flipped in flips(counted[as_run])
                if weaker(claim.verdict(flipped))), None)
    seeds = int(counted[as_run]["n"].min())
    facts = summary(claim.name, verdict, weakened, one, seeds, claim.compared,
                    [m for m in moved if m not in weakened])
    facts.update({f"robust_{claim.name}_at_{_key(name)}": word for name, word in at.items()
                  if name != "as run"})
    facts.update({f"robust_{claim.name}_at_{_key(v.name)}": NOT_MEASURED
                  for v in every if not v.measured})
    if not all(v.measured for v in every):
        facts[f"robust_{claim.name}"] += f"; the higher target {NOT_MEASURED}"
    return facts


def is_weaker(word: str, verdict: str, strength: Callable[[str], float] | None) -> bool:
    """Whether `word` says less than `verdict`, in the direction `verdict` points (a trend the
    other way is weaker than no difference); without `strength`, any other word is; against
    "no difference" (strength 0), any difference is."""
    if strength is None:
        return word != verdict
    here, there = strength(verdict), strength(word)
    if here == 0:
        return there != 0
    return np.sign(here) * there < abs(here)


def summary(name: str, verdict: str, weakened: list[str], one: str | None, seeds: int,
            compared: int = 2, stronger: list[str] = ()) -> dict:
    """The standard's facts of one claim from its parts (for claims with their own
    neighbours): `weakened` the neighbours whose verdict is weaker ('neighbour: verdict'),
    `one` the single net (or seed) that weakens it, or None; `stronger` the neighbours whose
    verdict is stronger (quoted, not fragile)."""
    few = compared >= 2 and seeds < ENOUGH_SEEDS
    fragile = bool(weakened) or one is not None
    standing = ("fragile and underpowered" if fragile and few else "fragile" if fragile
                else "underpowered" if few else "robust")
    parts = [f"weaker at {'; '.join(weakened)}" if weakened
             else "no weaker verdict at any neighbour"]
    if stronger:
        parts.append(f"stronger at {'; '.join(stronger)}")
    parts.append(f"one net weakens it ({one})" if one else "no single net weakens it")
    parts.append(f"{seeds} seeds a condition" + (f", fewer than {ENOUGH_SEEDS}" if few else ""))
    return {f"robust_{name}": f"{standing}: {'; '.join(parts)}",
            f"robust_{name}_verdict": verdict, f"robust_{name}_standing": standing,
            f"robust_{name}_one_net": one or "none", f"robust_{name}_seeds": seeds}


NAMES = {"sigma_w2": "σ_w²"}


def _text(value) -> str:
    return f"{value:g}" if isinstance(value, numbers.Real) else str(value)


def _key(name: str) -> str:
    return name.replace("target ", "target").replace(" steps", "steps").replace(" ", "_")


def comparison_word(a: dict, b: dict) -> Callable[[pd.DataFrame], str]:
    """The verdict of "cell a against cell b" (each {column: value}, or a list of such for a
    pooled side) under the one standard: effect, trend or no difference, with the direction."""
    from research.training.outcomes import intervals_separate

    def side(counts, where):
        wheres = where if isinstance(where, list) else [where]
        mask = np.logical_or.reduce([np.logical_and.reduce([counts[c] == v for c, v in w.items()])
                                     for w in wheres])
        return int(counts.loc[mask, "k"].sum()), int(counts.loc[mask, "n"].sum())

    def verdict(counts: pd.DataFrame) -> str:
        (k1, n1), (k2, n2) = side(counts, a), side(counts, b)
        if k1 * n2 == k2 * n1:
            return "no difference"
        more = "first higher" if k1 * n2 > k2 * n1 else "second higher"
        return f"{'effect' if intervals_separate(k1, n1, k2, n2) else 'trend'}, {more}"

    return verdict


def comparison_strength(word: str) -> float:
    """How strongly a comparison's verdict says "the first is higher": effect 2, trend 1, no
    difference 0, and the negatives for the second."""
    if word == "no difference":
        return 0.0
    size = 2.0 if word.startswith("effect") else 1.0
    return size if word.endswith("first higher") else -size


def deepest_trained(rows: str = "sigma_w2") -> Callable[[pd.DataFrame], str]:
    """The verdict "the deepest depth with P(converged) ≥ ½, per value of `rows`"."""
    def verdict(counts: pd.DataFrame) -> str:
        parts = []
        for value, group in counts.groupby(rows):
            good = group.loc[group["k"] / group["n"] >= 0.5, "depth"]
            parts.append(f"{_text(value)}: {int(good.max()) if len(good) else 'none'}")
        return f"{NAMES.get(rows, rows)} " + ", ".join(parts)

    return verdict
