"""The paper figures: one registry from name to (presets, plot function), which
`initmap figures` (research/cli/figures.py) redraws from the tables stored in figures/data/."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from research.views.figures import archs as figure_arch
from research.views.figures import cnnspectra as figure_cnnspectra
from research.views.figures import deepcnn as figure_deepcnn
from research.views.figures import dipdeep as figure_dipdeep
from research.views.figures import fractal as figure_fractal
from research.views.figures import grokking as figure_grokking
from research.views.figures import isometry as figure_isometry
from research.views.figures import mutransfer as figure_mutransfer
from research.views.figures import papers as figure_plots
from research.views.figures import realmodels as figure_realmodels


@dataclass(frozen=True)
class Figure:
    name: str
    presets: tuple[str, ...]
    draw: Callable[[dict[str, pd.DataFrame], Path], dict]
    shows: str
    # Data that is no sweep (computed at init, no training): `--rerun` writes it into the data
    # folder (ROOT/data) after the sweeps; `draw` reads it from beside them.
    compute: Callable[[Path], None] | None = None


FIGURES = {f.name: f for f in (
    Figure("dip-tanh", ("dip-tanh",), figure_plots.dip_tanh,
           "Schoenholz et al. 2017: P(converged) over σ_w² × depth, tanh, with 6·ξ_c"),
    Figure("dip-deep", figure_dipdeep.PRESETS, figure_dipdeep.dip_deep,
           "Schoenholz et al. 2017 at depth 25–300, MNIST-1D and digits: only the critical "
           "σ_w² learns deepest"),
    Figure("relu-depth", ("relu-depth",), figure_plots.relu_depth,
           "He et al. 2015: deep ReLU nets at σ_w² = 1, 2, 4 against depth"),
    Figure("symmetry", ("symmetry-zero", "symmetry-constant", "symmetry-random"),
           figure_plots.symmetry, "why random: zero, constant and random inits"),
    Figure("init-scale", ("init-scale",), figure_plots.init_scale,
           "how small: steps to target against σ_w² over five decades"),
    Figure("lr-init", ("lr-init", "lr-init-zoom"), figure_plots.lr_init,
           "learning rate × σ_w² trainability (Sohl-Dickstein 2024)"),
    Figure("fractal", figure_fractal.PRESETS, figure_fractal.fractal,
           "input × output learning-rate trainability, zooms, box-counting dimension "
           "(Sohl-Dickstein 2024)"),
    Figure("theory-phase", (), figure_plots.theory_phase,
           "mean-field order/chaos phase diagram with ξ_c contours"),
    Figure("arch-bands", figure_arch.BANDS, figure_arch.arch_bands,
           "the band of σ_w² that trains against depth, per network type"),
    Figure("arch-zoo", figure_arch.ZOO, figure_arch.arch_zoo,
           "MNIST-1D test accuracy per network type beside Greydanus 2020"),
    Figure("arch-zoo-digits", figure_arch.ZOO + figure_arch.ZOO_DIGITS,
           figure_arch.arch_zoo_digits,
           "test accuracy per network type on the 8 × 8 digits, beside MNIST-1D"),
    Figure("cnn2d-bands", figure_arch.CNN2D, figure_arch.cnn2d_bands,
           "2-D tanh CNN on digits: Gaussian vs delta-orthogonal, with the MLP's critical line"),
    Figure("deep-cnn", figure_deepcnn.PRESETS, figure_deepcnn.deep_cnn,
           "tanh CNNs on digits at criticality, inputs at q*: delta-orthogonal vs Gaussian "
           "kernels, each at its best rate; trainability, learning speed, and J Jᵀ at init "
           "(Xiao et al. 2018)", compute=figure_cnnspectra.compute_channels),
    Figure("isometry", figure_isometry.SPEED, figure_isometry.isometry,
           "dynamical isometry: J Jᵀ's spectrum against depth, Gaussian vs orthogonal, and "
           "learning speed (Pennington et al. 2017)", compute=figure_isometry.compute_spectrum),
    Figure("mu-transfer", figure_mutransfer.PRESETS, figure_mutransfer.mu_transfer,
           "μTransfer (Yang et al. 2022, Fig. 1): rate multipliers tuned at the base width and "
           "transferred; training and held-out loss against learning rate per width, SP beside "
           "μP, the best rate's drift per doubling of width, and the coordinate check",
           compute=figure_mutransfer.compute_coordcheck),
    Figure("grokking", figure_grokking.PRESETS, figure_grokking.grokking,
           "Omnigrok (Liu et al. 2023): the init scale, the weight norm and when a network "
           "generalises; the delay against weight decay"),
    Figure("real-models", figure_realmodels.PRESETS, figure_realmodels.real_models,
           "the σ_w² band that trains on real architectures (ViT, MLP-Mixer, a decoder LM, a "
           "BiLSTM) at two depths, beside Flax's default, their own init and mean field",
           compute=figure_realmodels.compute),
)}
