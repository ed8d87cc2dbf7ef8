"""Commands ``physics`` (one oxide -> flip rates) and ``thickness-for`` (the inverse)."""

from __future__ import annotations

import math

import numpy as np

from ..constants import SECONDS_PER_YEAR
from ..errors import PhysicsDomainError
from ..physics import (
    FLIP_MODELS,
    MATERIALS,
    current_density_A_per_m2,
    flip_rates,
    material as material_row,
    memory_cell,
    retention_thickness_nm,
    retention_time_s,
    symmetric_rate,
    thickness_for,
)
from ..physics.retention import CELL_KINDS
from ._output import emit, flag_bool, flag_choice, flag_float, flag_int

__all__ = ["PhysicsCommands"]

_P_TARGET = 1e-6


def _fmt_p(p: float) -> str:
    if 0.9 < p < 1.0:
        return f"{p:.6f} (1 - {1.0 - p:.2e})"
    return "1 (to double precision)" if p >= 1.0 else f"{p:.3e}"


def _mutual_information_bits(p10: float, p01: float) -> float:
    """I(X; Y) [bits per stored bit] of the binary channel with equiprobable inputs."""
    def h(x: float) -> float:
        return 0.0 if x <= 0.0 or x >= 1.0 else -(x * math.log2(x) + (1 - x) * math.log2(1 - x))
    return max(0.0, h(0.5 * (1.0 - p10) + 0.5 * p01) - 0.5 * h(p10) - 0.5 * h(p01))


def _fmt_time(t: float) -> str:
    if not math.isfinite(t):
        return "inf"
    return f"{t:.3g} s = {t / SECONDS_PER_YEAR:.3g} years"


class PhysicsCommands:
    """Mixin of :class:`wkbnoise.cli.Cli`."""

    def physics(self, material="SiO2", thickness_nm=4.5, years=10.0, cell="flash", eta_up=0.0, charged_bit=1,
                sigma_rel=0.03, json=False):
        """From an oxide to per-bit flip rates: barrier, leakage, retention time and flip probabilities.

        A charged cell (written to V_stored across the oxide) leaks by direct tunnelling (Tsu-Esaki, WKB)
        and reads wrong once it has fallen to V_sense; cell-to-cell thickness spread (Model A) turns the
        retention time into a flip probability after the storage time.

        Args:
            material: oxide of the table: SiO2, Si3N4 or HfO2 (default SiO2).
            thickness_nm: mean oxide thickness [nm] (default 4.5).
            years: storage time without refresh [years] (default 10).
            cell: flash (20x20 nm^2 floating gate, 2 V -> 1 V) or dram (20 fF, V_DD 1.1 V, tunnelling only).
            eta_up: p_0to1 = eta_up * p_1to0 for the uncharged state, in [0, 1] (default 0: pure leakage).
            charged_bit: the logical bit stored as charge, 1 or 0 (default 1: leakage flips 1 -> 0).
            sigma_rel: cell-to-cell thickness spread sigma_d / d (default 0.03).
            json: print one JSON object instead of the table.
        """
        mat = material_row(flag_choice(material, "material", [m for m in MATERIALS])).name
        d = flag_float(thickness_nm, "thickness-nm", low=0.3, high=30.0)
        yrs = flag_float(years, "years", low=0.0, low_open=True)
        kind = flag_choice(cell, "cell", CELL_KINDS)
        eta = flag_float(eta_up, "eta-up", low=0.0, high=1.0)
        cbit = flag_int(charged_bit, "charged-bit", low=0, high=1)
        s_rel = flag_float(sigma_rel, "sigma-rel", low=0.0, high=0.5)
        as_json = flag_bool(json, "json")

        c = memory_cell(mat, d, kind)
        ox = c.oxide
        t_s = yrs * SECONDS_PER_YEAR
        j = float(current_density_A_per_m2(c.v_stored_V, ox, "tsu_esaki", c.temperature_K, c.electrode_mass_ratio,
                                           c.band_bottom_eV))
        t_ret = float(retention_time_s(c))
        try:
            d_star = float(retention_thickness_nm(t_s, c, bracket_nm=(0.3, 20.0)))
        except PhysicsDomainError:
            d_star = math.nan
        p10, p01 = (float(x) for x in flip_rates(t_s, c, eta_up=eta, charged_bit=cbit, sigma_thickness_rel=s_rel))
        p_sym = float(symmetric_rate(p10, p01))
        a = 1.0 - p10 - p01
        info = _mutual_information_bits(p10, p01)
        informative = bool(a >= 0.01)
        try:
            d_ok = float(thickness_for(_P_TARGET, t_s, c, sigma_thickness_rel=s_rel))
        except PhysicsDomainError:
            d_ok = math.nan
        if not informative:
            verdict = (f"after {yrs:g} years a {d:g} nm {mat} oxide has lost the data: a = 1 - p_1to0 - p_0to1 = "
                       f"{a:.3g} and {info:.2g} bits of information per stored bit remain, so the stored bits carry "
                       f"{'no' if a <= 0 else 'essentially no'} information (no ECC or correction can bring it back).")
        elif p_sym > 1e-2:
            verdict = "the bits still carry information, but the error rate is very high."
        else:
            verdict = "the bits carry information."
        if math.isfinite(d_ok):
            verdict += f" p = {_P_TARGET:g} after {yrs:g} years needs a mean thickness of {d_ok:.2f} nm."
        supply = "Si-like supply (m_el 0.5, E_F - E_c 0.1 eV)"
        payload = {
            "material": mat, "thickness_nm": d, "years": yrs, "cell": kind,
            "barrier_eV": ox.barrier_eV, "mass_ratio": ox.mass_ratio, "k_rel": ox.k_rel,
            "capacitance_F": float(c.capacitance_total_F), "electrons_stored": c.electrons_stored,
            "v_stored_V": c.v_stored_V, "v_sense_V": c.v_sense_V,
            "j_stored_A_per_cm2": j * 1e-4, "retention_time_s": t_ret,
            "retention_thickness_nm": d_star, "sigma_thickness_rel": s_rel, "eta_up": eta, "charged_bit": cbit,
            "p_1to0": p10, "p_0to1": p01, "p_symmetric": p_sym, "a": a, "mutual_information_bits": info,
            "informative": informative,
            "thickness_for_1e-6_nm": d_ok, "verdict": verdict,
        }
        lines = [
            f"{mat}, {d:g} nm, {kind} cell, {yrs:g} years without refresh",
            f"  barrier            phi_B = {ox.barrier_eV:g} eV, m_ox = {ox.mass_ratio:g} m0, k = {ox.k_rel:g}",
            f"  cell               C_T = {float(c.capacitance_total_F):.3g} F ({c.electrons_stored} electrons), "
            f"V_ox {c.v_stored_V:g} V written -> reads wrong at {c.v_sense_V:.3g} V",
            f"  J(V_stored)        {j * 1e-4:.3e} A/cm^2 (Tsu-Esaki, WKB, {supply})",
            f"  retention time     {_fmt_time(t_ret)} at the mean thickness",
            "  d*                 "
            + (f"{d_star:.3f} nm (retention exactly {yrs:g} years)" if math.isfinite(d_star) else "outside 0.3-20 nm"),
            f"  p_1to0             {_fmt_p(p10)} per bit (thickness spread {100 * s_rel:g} %)",
            f"  p_0to1             {_fmt_p(p01)} per bit (eta_up = {eta:g}, charged bit = {cbit})",
            f"  symmetric p        {_fmt_p(p_sym)} per bit (random polarity: (p_1to0 + p_0to1) / 2)",
            f"  information        a = 1 - p_1to0 - p_0to1 = {a:.4g}; {info:.4g} bits per stored bit",
            f"  verdict            {verdict}",
        ]
        emit(payload, "\n".join(lines), as_json)

    def thickness_for(self, p=1e-6, years=10.0, material="SiO2", sigma_rel=0.03, cell="flash", model="variability",
                      json=False):
        """The mean oxide thickness that keeps the per-bit flip probability at a target after a storage time.

        A direct-tunnelling lower bound: industry's 7-8 nm flash tunnel oxides are set by stress-induced
        leakage (SILC), which is not modelled. Searches 0.5-20 nm and says so when the target is unreachable.

        Args:
            p: target flip probability per bit, in (0, 1) (default 1e-6).
            years: storage time without refresh [years] (default 10).
            material: oxide of the table: SiO2, Si3N4 or HfO2 (default SiO2).
            sigma_rel: cell-to-cell thickness spread sigma_d / d (default 0.03; variability model).
            cell: flash or dram (default flash).
            model: variability (default), poisson or counting.
            json: print one JSON object instead of the table.
        """
        p_t = flag_float(p, "p", low=0.0, high=1.0, low_open=True, high_open=True)
        yrs = flag_float(years, "years", low=0.0, low_open=True)
        mat = material_row(flag_choice(material, "material", [m for m in MATERIALS])).name
        s_rel = flag_float(sigma_rel, "sigma-rel", low=0.0, high=0.5)
        kind = flag_choice(cell, "cell", CELL_KINDS)
        mdl = flag_choice(model, "model", FLIP_MODELS)
        as_json = flag_bool(json, "json")

        c = memory_cell(mat, 5.0, kind)
        t_s = yrs * SECONDS_PER_YEAR
        bracket = (0.5, 20.0)
        try:
            d_bar = float(np.asarray(thickness_for(p_t, t_s, c, model=mdl, bracket_nm=bracket,
                                                   sigma_thickness_rel=s_rel)))
        except PhysicsDomainError as exc:
            text = str(exc)
            if "retains longer" in text:
                why = (f"even {bracket[0]:g} nm keeps a {mat} {kind} cell charged longer than {yrs:g} years, so the "
                       f"flip probability stays below p. Use a longer --years or a larger --p")
            elif "retains shorter" in text:
                why = (f"even {bracket[1]:g} nm loses the charge of a {mat} {kind} cell before {yrs:g} years. Use a "
                       f"shorter --years or a larger --p")
            else:
                raise
            raise PhysicsDomainError(f"--p={p_t:g} after --years={yrs:g}: no mean thickness in "
                                     f"{bracket[0]:g}-{bracket[1]:g} nm reaches it (unreachable in the search range): {why}.") from None
        try:
            d_star = float(retention_thickness_nm(t_s, c, bracket_nm=(0.3, 20.0)))
        except PhysicsDomainError:
            d_star = math.nan
        payload = {"p_target": p_t, "years": yrs, "material": mat, "cell": kind, "model": mdl,
                   "sigma_thickness_rel": s_rel, "thickness_nm": d_bar, "retention_thickness_nm": d_star,
                   "bracket_nm": list(bracket)}
        spread = f", thickness spread {100 * s_rel:g} %" if mdl == "variability" else ""
        lines = [
            f"{mat} {kind} cell, p = {p_t:g} per bit after {yrs:g} years ({mdl} model{spread})",
            f"  mean thickness     {d_bar:.3f} nm",
            "  d*                 " + (f"{d_star:.3f} nm (deterministic retention of exactly {yrs:g} years)"
                                         if math.isfinite(d_star) else "outside 0.3-20 nm"),
            "  note               direct-tunnelling lower bound; SILC (trap-assisted leakage) is not modelled",
        ]
        emit(payload, "\n".join(lines), as_json)
