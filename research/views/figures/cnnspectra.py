"""J Jᵀ of very deep tanh CNNs at init, for the `deep-cnn` figure (Xiao et al. 2018): the
spectrum of J = ∂h^L/∂h^1 over positions × channels that the 8-channel sweeps store
(`init_jac_*`) against the wide limit of free probability (theory.jacobian_spectrum:
delta-orthogonal kernels act as orthogonal matrices at every position), and the
delta-orthogonal spectrum against the channel count.

The channel table is computed from networks at init (no training) by `compute_channels` on
`--rerun` and stored in figures/data/deep-cnn-channels/: with circular padding a
delta-orthogonal CNN never mixes positions at init (only the centre tap is nonzero), so J is
block-diagonal, one channels × channels block per position, each the Jacobian of an orthogonal
tanh MLP as wide as the channel count. The blocks are accumulated layer by layer in float64,
which reaches widths whose full Jacobian (positions × channels square) this CPU cannot
afford."""

from pathlib import Path

import jax
import numpy as np
import pandas as pd

import research.theory as theory
from research.views import report

SPECTRA = ("deep-cnn-gaussian", "deep-cnn-delta")  # 8 channels: the engine's J fits
COLOURS = {"gaussian": "tab:red", "delta": "tab:blue"}
THEORY_WEIGHTS = {"gaussian": "gaussian", "delta": "orthogonal"}  # v_W of one layer
REFERENCE_SIGMA_B2 = 0.05  # cnn2d-bands' σ_b², for the wide limit there
CHANNELS_DIR = "deep-cnn-channels"  # beside the sweep folders in figures/data
CHANNELS = (8, 16, 32, 64)
SEEDS, INPUTS = 4, 4  # the sweeps' seeds and Jacobian inputs (engine.JACOBIAN_EXAMPLES)


def jacobian_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per depth: the seeds' mean of each stored moment of J Jᵀ at init, and the wide-limit
    (mean, variance) of `depth − 1` layers at the table's σ's."""
    first = table.iloc[0]
    weights = THEORY_WEIGHTS[init_name(first["init"])]
    rows = table.groupby("depth")[["init_jac_mean", "init_jac_var", "init_jac_max"]].mean()
    rows = rows.reset_index()
    wide = [theory.jacobian_spectrum(str(first["activation"]), float(first["sigma_w2"]),
                                     float(first["sigma_b2"]), int(d) - 1, weights)
            for d in rows["depth"]]
    rows["theory_mean"] = [float(m) for m, _ in wide]
    rows["theory_var"] = [float(v) for _, v in wide]
    return rows


def init_name(init: str) -> str:
    return "delta" if init == "delta_orthogonal" else str(init)


def delta_parameters(dataset, channels: int, depth: int, seeds: int = SEEDS,
                     inputs: int = INPUTS) -> tuple[dict, np.ndarray]:
    """(parameters of seeds 0 … seeds − 1 stacked on a leading axis, the first hidden layer's
    pre-activations (seeds, inputs, positions, channels)) of deep-cnn-delta's networks with
    `channels` channels and `depth` layers, as the engine draws them, in float64."""
    # Here, not at the top: every CLI verb imports the figure registry, and the engine loads optax.
    from research.networks import layers
    from research.training import engine, presets, spec

    s = presets.load("deep-cnn-delta", {"depth": [depth], "width": [channels], "seeds": seeds,
                                        "eval_size": inputs, "steps": 1, "log_every": 1,
                                        "chunk_steps": 1})
    runs = spec.expand(s)
    program = engine.program_for(runs, dataset)
    data = engine.data_for(dataset, inputs, input_scale=s.input_scale)

    def first_layer(hp):
        params = engine.init_params(hp, data, program)
        net = layers.Net(program.model, hp)
        x = layers.network_input(data.x_eval, program.model, True)
        h = net.linear(x, params["w_in"], params["b_in"])
        return params, h.reshape(h.shape[0], -1, h.shape[-1])

    params, h1 = jax.jit(jax.vmap(first_layer))(engine.hyper_for(runs))
    return ({k: np.asarray(v, np.float64) for k, v in params.items()},
            np.asarray(h1, np.float64))


def block_moments(params: dict, h1: np.ndarray, depths) -> dict[int, np.ndarray]:
    """{depth L: (mean, variance, largest) of J Jᵀ's eigenvalues per member, averaged over
    its inputs as the engine's `init_jac_*` are}, J = ∂h^L/∂h^1 of a delta-orthogonal CNN:
    per position J_p ← Cᵀ diag(tanh'(h_p)) J_p with C the centre tap, the spectrum of J Jᵀ
    the union of its blocks' (positions × channels eigenvalues)."""
    w = params["w_hidden"]  # (members, layers, k, k, c, c)
    k = w.shape[2]
    centre = w[:, :, k // 2, k // 2]
    if not np.allclose(np.abs(w).sum(axis=(2, 3)), np.abs(centre)):
        raise ValueError("block_moments needs delta-orthogonal kernels (only the centre tap)")
    channels = centre.shape[-1]
    out = {depth: [] for depth in depths}
    for m in range(len(centre)):
        h = h1[m]  # (inputs, positions, channels)
        jac = np.broadcast_to(np.eye(channels), (*h.shape[:2], channels, channels))
        for layer in range(max(depths)):
            if layer + 1 in out:
                eig = np.linalg.eigvalsh(jac @ np.swapaxes(jac, -1, -2))
                eig = eig.reshape(len(h), -1)  # every block of an input: its J's spectrum
                out[layer + 1].append(np.mean([eig.mean(axis=1), eig.var(axis=1),
                                               eig.max(axis=1)], axis=1))
            if layer + 1 == max(depths):
                break
            c, b = centre[m, layer], params["b_hidden"][m, layer]
            jac = c.T @ ((1.0 - np.tanh(h) ** 2)[..., None] * jac)
            h = np.tanh(h) @ c + b
    return {depth: np.asarray(rows) for depth, rows in out.items()}


def channel_table(dataset, depths, channels=CHANNELS) -> pd.DataFrame:
    """One row per (channels, depth): the members' mean of each moment, and the wide limit."""
    rows = []
    for c in channels:
        params, h1 = delta_parameters(dataset, c, max(depths))
        for depth, moments in block_moments(params, h1, depths).items():
            rows.append({"channels": c, "depth": depth, "mean": moments[:, 0].mean(),
                         "var": moments[:, 1].mean(), "max": moments[:, 2].mean(),
                         "members": len(moments)})
    return pd.DataFrame(rows)


def compute_channels(data_root: Path) -> Path:
    """`initmap figures deep-cnn --rerun`: the channel table at the delta preset's depths,
    stored as DATA_ROOT/deep-cnn-channels/channels.parquet for `deep_cnn` to draw from."""
    from research.training import presets
    from research.training.data import load_dataset

    depths = presets.load("deep-cnn-delta").depth
    table = channel_table(load_dataset("digits"), depths)
    return report.write_table(table, data_root / CHANNELS_DIR / "channels.parquet")


def stored_channels(data_root: Path) -> pd.DataFrame:
    return report.read_table(data_root / CHANNELS_DIR / "channels.parquet", "deep-cnn",
                             "channel table")


def draw_channels(ax, table: pd.DataFrame, first) -> None:
    for c, rows in table.groupby("channels"):
        ax.plot(rows["depth"], rows["var"], marker="o", label=f"{c} channels")
    depths = sorted(table["depth"].unique())
    wide = [float(theory.jacobian_spectrum(str(first["activation"]), float(first["sigma_w2"]),
                                           float(first["sigma_b2"]), int(d) - 1,
                                           "orthogonal")[1]) for d in depths]
    ax.plot(depths, wide, ls="--", color="black", lw=1, label="wide limit, from q* on")
    depth_axis(ax, depths)
    ax.set(yscale="log", xlabel="depth (conv layers)", ylabel="variance of J Jᵀ's eigenvalues",
           title="delta-orthogonal at init against the channel count")
    ax.legend(fontsize=7)


def draw_spectrum(ax, tables: dict[str, pd.DataFrame]) -> None:
    for name, table in tables.items():
        jac = jacobian_table(table)
        ax.plot(table["depth"], table["init_jac_var"], ls="none", marker=".", alpha=0.5,
                color=COLOURS[name])
        ax.plot(jac["depth"], jac["init_jac_var"], marker="o", color=COLOURS[name],
                label=f"{name}: variance of J Jᵀ's eigenvalues")
        ax.plot(jac["depth"], jac["init_jac_max"], marker="^", ls=":", color=COLOURS[name],
                label=f"{name}: largest")
        ax.plot(jac["depth"], jac["theory_var"], ls="--", color=COLOURS[name], lw=1,
                label=f"{name}: wide limit, from q* on")
    depth_axis(ax, sorted(next(iter(tables.values()))["depth"].unique()))
    ax.set(yscale="log", xlabel="depth (conv layers)",
           title="J Jᵀ at init (J = ∂hᴸ/∂h¹, positions × channels)")
    ax.legend(fontsize=6)


def depth_axis(ax, depths) -> None:
    ax.set_xscale("log")
    ax.set_xticks(list(depths), [str(d) for d in depths])
    ax.minorticks_off()


def spectra_facts(tables: dict[str, pd.DataFrame], channels: pd.DataFrame) -> dict:
    """Per init and depth of the 8-channel sweeps: each stored moment of J Jᵀ (the seeds'
    mean), the wide limit's variance, and the variance over the mean squared (the spread beside
    the mean's drift); the delta-orthogonal moments per channel count; the wide limit at
    cnn2d-bands' point on the critical line (σ_b² = 0.05), for the page's comparison."""
    facts = {}
    for name, table in tables.items():
        spread = (table["init_jac_var"] / table["init_jac_mean"] ** 2).groupby(table["depth"])
        for depth, ratio in spread.mean().items():
            facts[f"{name}_jac_var_over_mean2_depth{depth}"] = float(ratio)
        for row in jacobian_table(table).itertuples():
            for moment in ("mean", "var", "max"):
                facts[f"{name}_jac_{moment}_depth{row.depth}"] = float(
                    getattr(row, f"init_jac_{moment}"))
            facts[f"{name}_jac_var_theory_depth{row.depth}"] = row.theory_var
    for row in channels.itertuples():
        facts[f"delta_channels{row.channels}_jac_var_depth{row.depth}"] = float(row.var)
        facts[f"delta_channels{row.channels}_jac_mean_depth{row.depth}"] = float(row.mean)
    first = tables["delta"].iloc[0]
    activation, deepest = str(first["activation"]), int(tables["delta"]["depth"].max())
    other = theory.critical_sigma_w2(activation, REFERENCE_SIGMA_B2)
    facts.update({"spectra_width": int(first["width"]),
                  "spectra_sigma_w2": float(first["sigma_w2"]),
                  "spectra_sigma_b2": float(first["sigma_b2"]),
                  "spectra_q_star": theory.q_star(activation, float(first["sigma_w2"]),
                                                  float(first["sigma_b2"])),
                  "spectra_depths": ", ".join(
                      str(d) for d in sorted(tables["delta"]["depth"].unique())),
                  "reference_sigma_w2": other,
                  "reference_q_star": theory.q_star(activation, other, REFERENCE_SIGMA_B2),
                  f"reference_delta_jac_var_theory_depth{deepest}": float(
                      theory.jacobian_spectrum(activation, other, REFERENCE_SIGMA_B2,
                                               deepest - 1, "orthogonal")[1])})
    return facts
