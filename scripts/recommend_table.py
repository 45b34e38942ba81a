"""The table of docs/recommend.md that puts `initmap recommend`'s answer per network type beside
an independent numpy simulation (tests/simulate.py, which shares no code with the project's
theory or networks) and the literature.

    python scripts/recommend_table.py            # every row, as Markdown (minutes on a CPU)
    python scripts/recommend_table.py --row rnn-mnist1d

Each row names the `initmap recommend` command whose answer it shows (run here in-process,
with the committed figures/data as evidence). The simulations:
* plain stacks: χ₁, the per-layer factor on a tangent vector of a wide network (width 512, or
  256 channels over 16 positions; 40 layers, the last 20 read; 4 draws), and the σ_w² where it
  crosses 1, by bisection, with its error through χ₁'s slope;
* the RNN: the tied network on the dataset's real sequences, the mean log growth per step of a
  state perturbation (width 256, 8 draws, 64 sequences), and the σ_w² where it crosses 0;
* residual types: q_L/q_0 through the drawn network at init (16 draws, 32 inputs each).
"""

import argparse
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from research.advice import recommend  # noqa: E402
from research.cli.text import num, plus_minus  # noqa: E402
from research.training.data import load_dataset  # noqa: E402
from tests import simulate  # noqa: E402

DATA = ROOT / "figures" / "data"


def _recommend(argv: str) -> dict:
    args = dict(zip(argv.split()[::2], argv.split()[1::2], strict=True))
    return recommend.recommend(args["--arch"], args["--activation"], int(args["--depth"]),
                               norm=args.get("--norm", "none"), dataset=args.get("--dataset"),
                               data_root=DATA)


def _crossing(f, lo: float, hi: float, tol: float = 2e-3) -> tuple[float, float]:
    """The σ_w² where f's mean crosses 0 (f: σ_w² → (mean, standard error), fixed seeds), and
    its error: f's standard error there through f's slope in log σ_w²."""
    w = simulate.crossing(lambda v: f(v)[0], lo, hi, tol)
    slope = (f(w * 1.1)[0] - f(w / 1.1)[0]) / (2 * math.log(1.1))
    return w, w * f(w)[1] / slope


def _plain(argv: str, activation: str, conv: bool = False) -> tuple[str, str]:
    r = _recommend(argv)
    b2 = r["recommended_sigma_b2"]
    found = _crossing(lambda w: simulate.mlp_chi1(
        activation, w, b2, conv_kernel=5 if conv else 0, width=256 if conv else 512,
        n=16 if conv else 32, seeds=4), 1.0, 3.0)
    band = r["band"]
    ours = (f"σ_w² = {num(r['recommended_sigma_w2'])} at σ_b² = {num(b2)}; band "
            f"[{num(band['lower'])}, {num(band['upper'])}] at depth {r['depth']}")
    return ours, (f"χ₁ = 1 at σ_w² = {plus_minus(*found)} ({'conv, ' if conv else ''}"
                  "numpy, 4 draws)")


def _rnn(argv: str, dataset: str) -> tuple[str, str]:
    r = _recommend(argv)
    data = load_dataset(dataset)
    x = data.x.astype(np.float64)
    x = x.reshape(len(x), data.in_shape[0], -1)[:: len(x) // 64][:64]
    found = {name: _crossing(lambda w, ortho=ortho: simulate.rnn_lyapunov(
        x, "tanh", w, orthogonal=ortho), 2.0, 12.0, tol=0.01)
        for name, ortho in (("gaussian", False), ("orthogonal", True))}
    rnn = r["rnn"]
    ours = (f"σ_w² = {num(r['recommended_sigma_w2'])} on input and recurrent weights "
            f"(λ = 0 over the per-step drive); band [{num(r['band']['lower'])}, "
            f"{num(r['band']['upper'])}] at {r['seq_len']} steps; constant drive: "
            f"{num(rnn['constant_drive_sigma_w2'])}")
    sim = "; ".join(f"{name}: λ = 0 at σ_w² = {plus_minus(*found[name])}" for name in found)
    return ours, f"tied RNN on the {dataset} sequences, {sim}"


def _residual(argv: str, kind: str, activation: str, norm: str) -> tuple[str, str]:
    r = _recommend(argv)
    s, depth = r["structure"], r["depth"]
    n = s["branches"]
    g = s["variance_growth"][f"α = 1/√{n}"]
    x = simulate.per_seed_inputs(load_dataset("mnist1d").x, 16, 32)
    w2, b2, alpha = r["recommended_sigma_w2"], r["recommended_sigma_b2"], 1 / math.sqrt(n)
    if kind == "transformer":
        sim = simulate.transformer_growth(x, activation, w2, b2, alpha, depth, norm,
                                          linear_sigma_w2=1.0)
        what = "σ_w² 1 on W_q, W_k, W_v, W_o, W₁"
    else:
        sim = simulate.resnet_growth(x, activation, w2, b2, alpha, depth, norm=norm)
        what = f"σ_w² {num(w2)}"
    ours = (f"σ_w² = {num(w2)}" + (" (W₂; 1 on W_q, W_k, W_v, W_o, W₁)" if r["per_tensor"]
                                  else "") + f", α = 1/√{n}: q_L/q_0 = "
            f"{plus_minus(g['growth'], g['se'])} ({g['kind']})")
    return ours, f"q_L/q_0 = {plus_minus(*sim)} ({what}, α = 1/√{n}, numpy)"


ROWS = {
    "mlp-tanh": ("tanh MLP", "--arch mlp --activation tanh --depth 50",
                 lambda a: _plain(a, "tanh"),
                 "Schoenholz et al. 2017: critical line σ_w² ≈ 1.76 at σ_b² = 0.05; trains to "
                 "≈ 6ξ_c"),
    "mlp-relu": ("ReLU MLP", "--arch mlp --activation relu --depth 100",
                 lambda a: _plain(a, "relu"), "He et al. 2015: σ_w² = 2"),
    "cnn-tanh": ("tanh CNN", "--arch cnn --activation tanh --depth 50",
                 lambda a: _plain(a, "tanh", conv=True),
                 "Xiao et al. 2018: the MLP's critical line (fan_in = channels × kernel)"),
    "resnet": ("ResNet, no norm", "--arch resnet --activation relu --depth 20",
               lambda a: _residual(a, "resnet", "relu", "none"),
               "Hayou et al. 2021: α ∝ 1/√L keeps the stream O(1)"),
    "resnet-bn": ("ResNet, BatchNorm", "--arch resnet --activation relu --depth 20 --norm "
                  "batchnorm", lambda a: _residual(a, "resnet", "relu", "batchnorm"),
                  "De & Smith 2020: BatchNorm makes the stream grow linearly in depth"),
    "transformer-none": ("Transformer, no norm", "--arch transformer --activation gelu "
                         "--depth 12", lambda a: _residual(a, "transformer", "gelu", "none"),
                         "Huang et al. 2020 (T-Fixup): no LN needs scaled branches"),
    "transformer-pre_ln": ("Transformer, pre-LN", "--arch transformer --activation gelu "
                           "--depth 12 --norm pre_ln",
                           lambda a: _residual(a, "transformer", "gelu", "pre_ln"),
                           "Xiong et al. 2020: pre-LN's stream grows with depth, its "
                           "gradients stay bounded"),
    "transformer-post_ln": ("Transformer, post-LN", "--arch transformer --activation gelu "
                            "--depth 12 --norm post_ln",
                            lambda a: _residual(a, "transformer", "gelu", "post_ln"),
                            "Wang et al. 2022 (DeepNorm): post-LN renormalises each block; "
                            "α = (2N)^¼"),
    "rnn-mnist1d": ("tanh RNN, MNIST-1D", "--arch rnn --activation tanh --depth 1",
                    lambda a: _rnn(a, "mnist1d"),
                    "Chen, Pennington & Schoenholz 2018: the critical line at the input-"
                    "driven σ_b² (a constant drive)"),
    "rnn-digits": ("tanh RNN, digits", "--arch rnn --activation tanh --depth 1 --dataset "
                   "digits", lambda a: _rnn(a, "digits"),
                   "Chen, Pennington & Schoenholz 2018"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--row", choices=list(ROWS), action="append")
    rows = parser.parse_args().row or list(ROWS)
    print("| network | command | initmap recommend | independent simulation | literature |")
    print("| --- | --- | --- | --- | --- |")
    for key in rows:
        label, argv, run, literature = ROWS[key]
        ours, sim = run(argv)
        print(f"| {label} | `initmap recommend {argv}` | {ours} | {sim} | {literature} |",
              flush=True)


if __name__ == "__main__":
    main()
