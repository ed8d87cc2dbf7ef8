"""Make the two figures of docs/physics.md.

    python docs/make_physics_figures.py          # writes docs/img/physics_jv.png, physics_flip_vs_thickness.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from wkbnoise.constants import SECONDS_PER_YEAR  # noqa: E402
from wkbnoise.physics import (  # noqa: E402
    Oxide,
    StorageCell,
    current_density_A_per_m2,
    flip_probability,
    retention_thickness_nm,
    thickness_for,
)

A_PER_CM2 = 1e-4


def figure_jv(path: Path) -> None:
    from matplotlib.lines import Line2D

    v = np.geomspace(0.02, 4.0, 200)
    fig, ax = plt.subplots(figsize=(7.0, 5.2))
    colors = {1.5: "tab:blue", 2.0: "tab:orange", 3.0: "tab:green"}
    styles = {"Tsu-Esaki (WKB), metal cathode": dict(lw=2, ls="-"),
              "Tsu-Esaki (WKB), Si-like cathode": dict(lw=2, ls="--"),
              "Schuegraf-Hu closed form": dict(lw=1, ls="-."),
              "Fowler-Nordheim": dict(lw=1, ls=":")}
    for d, color in colors.items():
        ox = Oxide.from_material("SiO2", d)
        curves = (current_density_A_per_m2(v, ox),
                  current_density_A_per_m2(v, ox, electrode_mass_ratio=0.5, band_bottom_eV=-0.1),
                  current_density_A_per_m2(v, ox, "schuegraf_hu"),
                  current_density_A_per_m2(v, ox, "fn"))
        for j, style in zip(curves, styles.values()):
            ax.plot(v, j * A_PER_CM2, color=color, **style)
    ax.errorbar([1.0], [np.sqrt(10.0)], yerr=[[np.sqrt(10) - 1], [10 - np.sqrt(10)]], fmt="none", ecolor="k",
                capsize=4, lw=1.5)
    ax.annotate("1.5 nm, 1 V: 1-10 A/cm$^2$\n(Lo et al. 1997)", (1.0, 10.0), xytext=(0.35, 1e3), fontsize=8,
                arrowprops=dict(arrowstyle="-", lw=0.6))
    ax.axvline(3.1, color="0.6", lw=0.8)
    ax.text(3.1, 1.3e5, "V = phi_B", fontsize=8, color="0.35", ha="center", va="bottom")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(1e-12, 1e5)
    ax.set_xlabel("oxide voltage V_ox [V]")
    ax.set_ylabel("current density J [A/cm$^2$]")
    ax.set_title("SiO$_2$ (phi_B = 3.1 eV, m_ox = 0.5 m0, 300 K)", pad=14)
    ax.grid(True, which="major", alpha=0.3)
    thickness = ax.legend([Line2D([], [], color=c, lw=2) for c in colors.values()],
                          [f"d = {d:g} nm" for d in colors], fontsize=8, loc="upper left")
    ax.add_artist(thickness)
    ax.legend([Line2D([], [], color="k", **s) for s in styles.values()], list(styles), fontsize=8,
              loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def figure_flip(path: Path) -> None:
    t = 10 * SECONDS_PER_YEAR
    d = np.linspace(4.0, 6.6, 140)
    cell = StorageCell.floating_gate(Oxide.from_material("SiO2", d))
    ref = StorageCell.floating_gate(Oxide.from_material("SiO2", 5.0))
    fig, ax = plt.subplots(figsize=(7.0, 5.0))
    for s_rel, color in ((0.02, "tab:blue"), (0.03, "tab:orange"), (0.05, "tab:red")):
        p = flip_probability(t, cell, sigma_thickness_rel=s_rel)
        ax.plot(d, p, color=color, lw=2, label=f"Model A: thickness spread {100 * s_rel:g} %")
        d_ok = float(thickness_for(1e-6, t, ref, sigma_thickness_rel=s_rel))
        ax.plot([d_ok], [1e-6], "o", color=color, ms=5)
        ax.annotate(f"{d_ok:.2f} nm", (d_ok, 1e-6), xytext=(d_ok + 0.04, 3e-6), fontsize=8, color=color)
    ax.plot(d, flip_probability(t, cell, model="poisson"), color="k", lw=1.2, ls="--",
            label="Model B: memoryless, mean = t_ret")
    d_star = float(retention_thickness_nm(t, ref))
    ax.axvline(d_star, color="0.5", lw=0.8)
    ax.text(d_star + 0.03, 1e-15, f"d* = {d_star:.2f} nm\n(t_ret = 10 years)", fontsize=8, color="0.3")
    ax.axhline(1e-6, color="0.5", lw=0.8, ls=":")
    ax.set_yscale("log")
    ax.set_ylim(1e-20, 2.0)
    ax.set_xlabel("mean tunnel-oxide thickness [nm]")
    ax.set_ylabel("P(charged bit reads wrong after 10 years)")
    ax.set_title("SiO$_2$ floating gate, 2 V -> 1 V, alpha_G = 0.6, Si-like supply")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "img")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    figure_jv(args.out / "physics_jv.png")
    figure_flip(args.out / "physics_flip_vs_thickness.png")


if __name__ == "__main__":
    main()
