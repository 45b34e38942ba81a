"""What stored sweeps measured, for `initmap recommend`: P(converged) with seed counts and Wilson
intervals per cell at the stored depth nearest the one asked, beside what theory predicts there,
and each framework default's verdict checked against the cell that matches it.

Sources: the evidence index of figures/data (`evidence_index`: per-cell outcomes, built when
figure data is written) and every --from-runs folder, scanned the same way. A cell is one
setting of every field that can change the outcome; cells are never pooled, so each keeps its
dataset, task, optimizer, learning rate and steps.

Matching a default (or the recommendation) to a cell, every field that changes the answer:
* init: the i.i.d. draws (gaussian, uniform, truncated normal) have the same mean-field maps at
  equal variance and match each other; orthogonal, delta-orthogonal and identity match only
  themselves;
* norm, residual (with its branch scale) and parametrisation: equal;
* σ_b²: within B2_TOL;
* σ_w²: within W2_TOL (relative); else the measured neighbours on both sides when both
  trained (the band is an interval), or both failed within NEAR_TOL; else the nearest
  measured value within NEAR_TOL, named as such and not used to judge; else not measured;
* depth: the stored depth nearest the one asked, said when it differs. The theory verdict is
  re-judged at that depth before it is compared, and a measurement decides the verdict at the
  depth asked only where trainability's monotonicity in depth carries it there: trained at a
  stored depth at least the one asked, or failed at one at most it. Elsewhere a contradicted
  theory verdict becomes "uncertain". Width and σ_b² are named where they differ.
"""

import math
from collections.abc import Callable
from pathlib import Path

from research.advice import evidence_index
from research.common.errors import SpecError

# Inits that break the symmetry between units (not zero or constant), structured ones included.
RANDOM_INITS = ("gaussian", "uniform", "truncated_normal", "orthogonal", "delta_orthogonal",
                "identity", "lsuv")
IID_INITS = ("gaussian", "uniform", "truncated_normal")
# A framework call's distribution → the stored init it is measured by.
DISTRIBUTION_INIT = {"normal": "gaussian", "uniform": "uniform",
                     "truncated_normal": "truncated_normal", "orthogonal": "orthogonal"}
# The fields that describe how a cell was trained and initialised, besides σ_w² and depth: a
# table's rows are grouped by them (a "setup"), in this order.
SETUP = ("source", "dataset", "task", "optimizer", "lr", "steps", "batch_size", "width", "init",
         "norm", "residual", "branch_scale", "parametrization", "sigma_b2")
W2_TOL = 0.05  # a stored σ_w² within 5% counts as measured at a given σ_w²
NEAR_TOL = 0.25  # a stored σ_w² within 25% is named as the nearest measurement; else none
B2_TOL = 0.01  # a stored σ_b² within ±0.01 counts as the same bias variance
TRAINS = 0.5


def default_data_root() -> Path:
    """figures/data of the working directory, else of the checkout this package lives in."""
    here = Path("figures/data")
    return here if here.is_dir() else Path(__file__).resolve().parents[2] / "figures" / "data"


def folders(data_root: str | Path | None, run_dirs) -> tuple[Path, list[Path]]:
    """The data root and each --from-runs folder (which must exist)."""
    root = default_data_root() if data_root is None else Path(data_root)
    extra = []
    for d in run_dirs:
        path = Path(d)
        if not path.is_dir():
            raise SpecError("from_runs", str(d), reason=f"no such folder: {d}")
        extra.append(path)
    return root, extra


def _load(root: Path, run_dirs: list[Path], arch: str, activation: str) -> tuple:
    """(cells, edges, searched, notes) of one type and activation: root's index (scanned when
    it has none), then each --from-runs folder."""
    index, notes = evidence_index.load(root), []
    if index is None:
        index = evidence_index.build(root)
    else:
        stale = evidence_index.stale(root, index)
        if stale:
            notes.append(f"the evidence index is older than the runs in {', '.join(stale)}: "
                         "rebuild it with `initmap figures --index`")
    searched = [str(root / name) for name in index["folders"]]
    cells, edges = evidence_index.select(index, arch, activation, root)
    for path in run_dirs:
        entry = evidence_index.scan(path)
        entry["edges"] = evidence_index.edges_of(path)
        found, found_edges = evidence_index.select(
            {"folders": {path.name: entry}}, arch, activation, path.parent)
        cells += found
        edges += found_edges
        searched.append(str(path))
    cells = [c for c in cells if c["init"] in RANDOM_INITS and c["sigma_w2"] > 0]
    return cells, edges, searched, notes


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of k successes in n (training.outcomes.wilson_interval, scalar)."""
    p = k / n
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return centre - half, centre + half


def _nearest(values, target: float) -> float:
    return min(sorted(set(values)), key=lambda v: abs(math.log(v) - math.log(target)))


def setup_of(cell: dict) -> tuple:
    return tuple(cell.get(key) for key in SETUP)


def gather(arch: str, activation: str, depth: int, width, sigma_b2: float, sigma_w2,
           run_dirs, data_root, band_at: Callable[[float, int], dict] | None,
           want: dict | None = None) -> dict:
    """The measured cells at the stored depth nearest `depth` (and width nearest `width`), each
    with theory's prediction where `band_at(σ_b², depth)` is given, and the disagreements.
    `want`: what the recommendation is for (init, norm, residual, branch_scale,
    parametrization), for matching it to a cell; with `data` ({field: value}: dataset, input
    scale, a token task's length), only the cells of that data."""
    root, extra = folders(data_root, run_dirs)
    rows, edges, searched, notes = _load(root, extra, arch, activation)
    want = {"init": "gaussian", "norm": "none", "residual": "fixed", "branch_scale": None,
            "parametrization": "standard", **(want or {})}
    found = {"searched": searched, "runs": sum(c["n"] for c in rows),
             "stored_depths": sorted({int(c["depth"]) for c in rows}), "depth": None,
             "width": None, "cells": [], "edges": [], "statements": list(notes), "want": want}
    if edges:
        nearest = _nearest([e["depth"] for e in edges if e.get("status") == "refined"] or
                           [depth], depth)
        found["edges"] = [e for e in edges if e.get("status") == "refined"
                          and e["depth"] == nearest]
    if want.get("data"):  # an RNN's band is its data's, in length and input drive: that only
        def same(c):
            return all(c.get(k) == v if isinstance(v, str) else
                       math.isclose(c.get(k, math.nan), v, rel_tol=1e-6)
                       for k, v in want["data"].items())

        other = sum(c["n"] for c in rows if not same(c))
        rows = [c for c in rows if same(c)]
        if other:
            found["statements"].append(
                f"{other} stored runs on other data left out (not "
                f"{', '.join(f'{k} {v}' for k, v in want['data'].items())}): their sequence "
                "length or input drive differ")
        found["runs"] = sum(c["n"] for c in rows)
        found["stored_depths"] = sorted({int(c["depth"]) for c in rows})
    if not rows:
        found["statements"].append(f"no stored {arch} {activation} runs: the recommendation "
                                   "rests on theory alone")
        return found
    nearest_depth = int(_nearest([c["depth"] for c in rows], depth))
    rows = [c for c in rows if c["depth"] == nearest_depth]
    if width is not None:
        near_width = _nearest([c["width"] for c in rows], width)
        rows = [c for c in rows if c["width"] == near_width]
    found.update(depth=nearest_depth, width=sorted({int(c["width"]) for c in rows}))
    cells = []
    for c in sorted(rows, key=lambda c: (tuple(str(v) for v in setup_of(c)), c["sigma_w2"])):
        lo, hi = wilson(c["k"], c["n"])
        cell = {**c, "p": c["k"] / c["n"], "lo": lo, "hi": hi, "trains": c["k"] / c["n"] >= TRAINS,
                "differs": differs(c, want, sigma_b2)}
        if band_at is not None:
            band = band_at(float(c["sigma_b2"]), nearest_depth)
            lower, upper = band["lower"] or 0.0, band["upper"] or math.inf
            cell["theory_trains"] = (band["critical_sigma_w2"] is not None
                                     and lower <= cell["sigma_w2"] <= upper)
        cells.append(cell)
    found["cells"] = cells
    found["statements"] += _compare(cells, nearest_depth, depth, sigma_w2, sigma_b2, want)
    return found


def _same_init(stored: str, wanted: str) -> bool:
    return stored == wanted or (stored in IID_INITS and wanted in IID_INITS)


def differs(cell: dict, want: dict, sigma_b2: float | None) -> list[str]:
    """The fields, as `field value`, in which a cell differs from what is judged."""
    out = []
    if not _same_init(cell["init"], want["init"]):
        out.append(f"init {cell['init']}")
    for key in ("norm", "residual", "parametrization"):
        if cell.get(key) != want[key]:
            out.append(f"{key} {cell.get(key)}")
    if want.get("branch_scale") is not None and not math.isclose(
            cell.get("branch_scale", 1.0), want["branch_scale"], rel_tol=W2_TOL):
        out.append(f"α {cell.get('branch_scale'):.3g}")
    if sigma_b2 is not None and abs(cell["sigma_b2"] - sigma_b2) > B2_TOL:
        out.append(f"σ_b² {cell['sigma_b2']:.3g}")
    return out


def _within(c: dict, sigma_w2: float, tol: float) -> bool:
    return abs(math.log(c["sigma_w2"] / sigma_w2)) <= math.log(1 + tol)


def match(cells: list[dict], sigma_w2: float, sigma_b2: float, want: dict) -> dict | None:
    """The measurement at (σ_w², σ_b²) for `want`, as {how, cells, trains, differs}:
    how = "at" (a cell within W2_TOL), "between" (the neighbours below and above both trained,
    or both failed within NEAR_TOL), "neighbours" (they disagree: no verdict), or "nearest"
    (the closest cell within NEAR_TOL, with the fields that differ if none matches every
    field: named, not judged). None when nothing was measured within NEAR_TOL."""
    if not cells:
        return None
    same = [c for c in cells if not differs(c, want, sigma_b2)]
    if not same:
        near = [c for c in cells if _within(c, sigma_w2, NEAR_TOL)]
        if not near:
            return None
        best = min(near, key=lambda c: (len(differs(c, want, sigma_b2)),
                                        abs(math.log(c["sigma_w2"] / sigma_w2)), -c["n"]))
        return {"how": "nearest", "cells": [best], "trains": None,
                "differs": differs(best, want, sigma_b2)}
    by_setup: dict[tuple, list[dict]] = {}
    for c in same:
        by_setup.setdefault(setup_of(c), []).append(c)

    def closeness(group):  # prefer the setup measured nearest σ_w², then the most runs
        return (min(abs(math.log(c["sigma_w2"] / sigma_w2)) for c in group),
                -sum(c["n"] for c in group))

    group = sorted(min(by_setup.values(), key=closeness), key=lambda c: c["sigma_w2"])
    at = [c for c in group if abs(c["sigma_w2"] / sigma_w2 - 1) <= W2_TOL]
    if at:
        best = min(at, key=lambda c: abs(math.log(c["sigma_w2"] / sigma_w2)))
        return {"how": "at", "cells": [best], "trains": best["trains"], "differs": []}
    below = [c for c in group if c["sigma_w2"] < sigma_w2]
    above = [c for c in group if c["sigma_w2"] > sigma_w2]
    if below and above:
        pair = [below[-1], above[0]]
        both = {pair[0]["trains"], pair[1]["trains"]}
        if both == {True} or (both == {False} and all(_within(c, sigma_w2, NEAR_TOL)
                                                      for c in pair)):
            return {"how": "between", "cells": pair, "trains": pair[0]["trains"],
                    "differs": []}
        if len(both) == 2:
            return {"how": "neighbours", "cells": pair, "trains": None, "differs": []}
    near = [c for c in group if _within(c, sigma_w2, NEAR_TOL)]
    if not near:
        return None
    best = min(near, key=lambda c: abs(math.log(c["sigma_w2"] / sigma_w2)))
    return {"how": "nearest", "cells": [best], "trains": None, "differs": []}


def describe(m: dict | None, named: tuple[str, ...] = ()) -> str:
    """A measurement in a few words: `0/3 at σ_w² 1`, `3/3 at 1.76 and 0/3 at 2.5`, or what
    the nearest measurement was and how it differs (`named`: differing fields already said
    beside it, by their prefix, e.g. "σ_b²")."""
    if m is None:
        return f"not measured (nothing within {NEAR_TOL:.0%} of its σ_w²)"
    parts = [f"{c['k']}/{c['n']} at σ_w² {c['sigma_w2']:.3g}" for c in m["cells"]]
    if m["how"] != "nearest":
        return " and ".join(parts)
    if m["differs"]:
        other = [d for d in m["differs"] if not d.startswith(named)]
        if not other:
            return f"{parts[0]}, in that other setting (not judged)"
        return f"measured only with {', '.join(other)}: {parts[0]} (not judged)"
    return f"nearest measured: {parts[0]} (not within {W2_TOL:.0%}; not judged)"


def where_text(stored: dict, asked: dict, bias_of: str = "asked") -> str:
    """The evidence's setting, naming what differs from the question: `depth 48 (asked 50),
    width 64`. `stored`, `asked`: {depth, width, sigma_b2}; a None in `asked` is not compared;
    `bias_of`: whose σ_b² the asked one is ("asked", "its own")."""
    out = []
    for key, label in (("depth", "depth"), ("width", "width"), ("sigma_b2", "σ_b²")):
        have, want = stored.get(key), asked.get(key)
        if have is None:
            continue
        text = f"{label} {have:.3g}"
        if want is not None and not math.isclose(float(have), float(want), rel_tol=1e-6,
                                                 abs_tol=1e-12):
            text += f" ({'asked' if key != 'sigma_b2' else bias_of} {want:.3g})"
        elif key == "sigma_b2":
            continue  # the same bias is not worth a word
        out.append(text)
    return ", ".join(out)


def _compare(cells: list[dict], stored_depth: int, depth: int, sigma_w2, sigma_b2,
             want: dict) -> list[str]:
    """Plain sentences: how theory's band fares against the setups whose cells can test it
    (some σ_w² trained, some failed), where they disagree, and the recommended σ_w²."""
    out = []
    if stored_depth != depth:
        out.append(f"the nearest stored depth is {stored_depth} (asked {depth}): every cell "
                   f"above is at depth {stored_depth}")
    by_setup: dict[tuple, list[dict]] = {}
    for c in cells:
        by_setup.setdefault(setup_of(c), []).append(c)
    testing = [c for group in by_setup.values() if len({x["trains"] for x in group}) == 2
               for c in group if "theory_trains" in c]
    for group in by_setup.values():
        if len({x["trains"] for x in group}) > 1 or len(group) < 3:
            continue  # a setup of one or two σ_w² is no scan
        outcome = "trained" if group[0]["trains"] else "failed"
        span = sorted(c["sigma_w2"] for c in group)
        text = (f"{_source(group[0])}: every measured σ_w² {outcome} ({span[0]:.3g} to "
                f"{span[-1]:.3g}, within its steps and learning rate)")
        if any("theory_trains" in c for c in group):
            text += ", so its cells cannot test where theory's band ends"
        elif group[0]["trains"]:
            text += ": the measured band reaches past both ends"
        out.append(text)
    if testing:
        wrong = [c for c in testing if c["theory_trains"] != c["trains"]]
        out.append(f"where a setup both trained and failed, theory's band and the measurement "
                   f"agree in {len(testing) - len(wrong)} of {len(testing)} cells")
    for c in [c for c in testing if c["theory_trains"] != c["trains"]]:
        said = "trainable" if c["theory_trains"] else "not trainable"
        out.append(f"disagree: σ_w² = {c['sigma_w2']:g}, σ_b² = {c['sigma_b2']:g}: theory says "
                   f"{said}, measured {c['k']}/{c['n']} converged ({_source(c)})")
    if sigma_w2 is not None:
        m = match(cells, sigma_w2, sigma_b2, want)
        at = f"the recommended σ_w² {sigma_w2:.4g}"
        if m is None:
            out.append(f"{at} is not measured here (nothing within {NEAR_TOL:.0%})")
        elif m["trains"] is False:
            out.append(f"{at} failed here ({describe(m)}, depth {stored_depth}) within that "
                       "sweep's steps and learning rate: the band is necessary for training, "
                       "not sufficient")
        elif m["trains"] is True:
            out.append(f"{at} trained here ({describe(m)}, depth {stored_depth})")
        else:
            out.append(f"{at}: {describe(m)}")
    return out


def _source(cell: dict) -> str:
    return Path(cell["source"]).name


def setup_text(cell: dict) -> str:
    """A cell's setup in one line: where and how it was trained."""
    return (f"{_source(cell)}: {cell.get('dataset')} {cell.get('task')}, {cell.get('optimizer')}"
            f" lr {cell['lr']:g}, {cell.get('steps')} steps, width {cell['width']}, init "
            f"{cell['init']}, norm {cell.get('norm')}, residual {cell.get('residual')} α "
            f"{cell.get('branch_scale', 1.0):g}, {cell.get('parametrization')}, σ_b² "
            f"{cell['sigma_b2']:.3g}")


def judge_defaults(defaults: list[dict], found: dict, depth: int, conventions,
                   in_time: bool = False, asked: dict | None = None) -> None:
    """Give each framework default (in place) the measurement that matches it — its init, its
    own bias variance, the recommendation's norm, residual and parametrisation — and a verdict
    that follows it where it decides the question (module docstring): `verdict`, `outcome`
    (trains: True / False / None) and `basis` ("measured", "theory" or "uncertain"), with
    `theory_verdict` kept. `in_time`: `depth` is an RNN's sequence length, the same at every
    stored depth (stacked layers), so theory is judged there. `asked`: {depth, width} of the
    question, for naming where the evidence differs."""
    stored = found["depth"]
    asked = {"depth": None, "width": None, **(asked or {})}
    for entry in defaults:
        init = DISTRIBUTION_INIT[conventions.get(entry["convention"]).distribution]
        # a default is a plain draw: a residual branch at α = 1
        want = {**found["want"], "init": init, "branch_scale": 1.0}
        m = match(found["cells"], entry["sigma_w2"], entry["sigma_b2"], want) \
            if found["cells"] else None
        theory_at_asked = entry.get("theory_trains")
        entry.update(theory_verdict=entry["verdict"], outcome=theory_at_asked, basis="theory")
        entry["measured"] = None if m is None else {
            "how": m["how"], "depth": stored, "differs": m["differs"], "trains": m["trains"],
            "text": describe(m, named=("σ_b²",)), "where": where_text(
                {"depth": stored, "width": m["cells"][0]["width"],
                 "sigma_b2": float(m["cells"][0]["sigma_b2"])},
                {"depth": asked["depth"], "width": asked["width"],
                 "sigma_b2": float(entry["sigma_b2"])}, bias_of="its own"),
            "cells": [{k: c[k] for k in ("sigma_w2", "sigma_b2", "init", "k", "n", "p", "lo",
                                         "hi", "source")} for c in m["cells"]]}
        deepest = entry.get("deepest_trainable")
        theory_at_stored = (None if deepest is None or not stored else
                            deepest >= (depth if in_time else stored))
        if m is None or m["trains"] is None or theory_at_stored is None:
            entry["evidence"] = ("not measured" if m is None or m["how"] == "nearest"
                                 else "inconclusive")
            continue
        said = "trains" if theory_at_stored else "fails"
        got = "trains" if m["trains"] else "fails"
        entry["evidence"] = "confirmed" if theory_at_stored == m["trains"] else "contradicted"
        asked_depth = asked["depth"] or stored
        carried = (stored == asked_depth or (m["trains"] and stored >= asked_depth)
                   or (not m["trains"] and stored <= asked_depth))
        if carried:
            entry.update(outcome=bool(m["trains"]), basis="measured")
            entry["verdict"] = (f"{got}: measured, as theory predicts"
                                if entry["evidence"] == "confirmed" else
                                f"{got}: measured, where theory predicted it {said}; the "
                                "verdict follows the measurement")
        elif entry["evidence"] == "contradicted":
            entry.update(outcome=None, basis="uncertain")
            entry["verdict"] = (f"uncertain: at depth {stored} it "
                                f"{'trained' if m['trains'] else 'failed'} where theory "
                                f"predicted it {said}, so theory's verdict at depth "
                                f"{asked_depth} is in doubt")
        else:
            entry["verdict"] = (f"{'trains' if theory_at_asked else 'fails'} by theory, which "
                                f"the measurement confirms at depth {stored}")
