"""The oxide table: barrier height, tunnelling mass and permittivity, with their sources.

docs/physics.md Energies are measured from the cathode electron reference (the Fermi level of
a metal or degenerate poly-Si electrode); ``barrier_eV`` is the conduction-band offset at the cathode.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError

__all__ = ["Material", "MATERIALS", "material"]


@dataclass(frozen=True)
class Material:
    """One row of the oxide table.

    Parameters
    ----------
    name : str
        Chemical formula as written in the table ("SiO2").
    barrier_eV : float
        Default barrier height phi_B [eV] (conduction-band offset to Si).
    barrier_range_eV : tuple of float
        Range found in the literature [eV].
    mass_ratio : float or None
        Default tunnelling mass m_ox / m0 [dimensionless]; None when no sourced value exists, and then
        :meth:`wkbnoise.physics.Oxide.from_material` requires an explicit ``mass_ratio``.
    mass_range : tuple of float or None
        Literature range of m_ox / m0.
    k_rel : float
        Relative permittivity [dimensionless].
    gap_eV : float or None
        Band gap [eV].
    source : str
        Where the numbers come from.
    """

    name: str
    barrier_eV: float
    barrier_range_eV: tuple[float, float]
    mass_ratio: float | None
    mass_range: tuple[float, float] | None
    k_rel: float
    gap_eV: float | None
    source: str


MATERIALS: dict[str, Material] = {
    m.name: m
    for m in (
        Material("SiO2", 3.1, (3.1, 3.2), 0.5, (0.42, 0.5), 3.9, 9.0,
                 "offset, k, gap: Robertson, Eur. Phys. J. Appl. Phys. 28, 265 (2004); mass 0.5: Weinberg, "
                 "J. Appl. Phys. 53, 5052 (1982); 3.2 eV / 0.42: Lenzlinger & Snow, J. Appl. Phys. 40, 278 (1969)"),
        Material("Si3N4", 2.1, (2.0, 2.4), 0.5, None, 7.5, 5.3,
                 "offset, k, gap: Robertson (2004); mass 0.5 is an UNSOURCED placeholder (docs/physics.md)"),
        Material("HfO2", 1.5, (1.4, 1.5), 0.15, (0.1, 0.2), 22.0, 5.8,
                 "offset, k, gap: Robertson (2004); tunnelling mass 0.1-0.2 (much below the band mass): "
                 "Yeo, King & Hu, Appl. Phys. Lett. 81, 2091 (2002)"),
        Material("Al2O3", 2.8, (2.8, 2.8), None, None, 9.0, 8.8,
                 "offset, k, gap: Robertson (2004); no sourced tunnelling mass: pass mass_ratio"),
        Material("ZrO2", 1.5, (1.4, 1.5), None, None, 25.0, 5.8,
                 "offset, k, gap: Robertson (2004); no sourced tunnelling mass: pass mass_ratio"),
        Material("La2O3", 2.3, (2.3, 2.3), None, None, 30.0, 6.0,
                 "offset, k, gap: Robertson (2004); no sourced tunnelling mass: pass mass_ratio"),
    )
}


def material(name: str) -> Material:
    """Look up a row of the table by name (case-insensitive).

    Raises
    ------
    InputError
        If ``name`` is not in the table.
    """
    if isinstance(name, str):
        for key, row in MATERIALS.items():
            if key.lower() == name.strip().lower():
                return row
    raise InputError(
        f"material={name!r} is not in the oxide table; use one of {', '.join(MATERIALS)} "
        "or build an Oxide(thickness_nm=..., barrier_eV=..., mass_ratio=..., k_rel=...) yourself."
    )
