"""The two objects of the physics: an :class:`Oxide` (the barrier) and a :class:`StorageCell`
(the charge it guards). Both are frozen; every numeric field may be a float or a NumPy array, and the
functions that take them broadcast over all fields (docs/physics.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..constants import ELEMENTARY_CHARGE_C, VACUUM_PERMITTIVITY_F_PER_M
from ..errors import InputError
from .materials import material

__all__ = ["Oxide", "StorageCell"]


def _field(value: Any, name: str, *, positive: bool = True, allow_zero: bool = False) -> float | np.ndarray:
    """Check a numeric field: finite, > 0 (or >= 0); return a float or a read-only float64 array."""
    if isinstance(value, bool) or value is None:
        raise InputError(f"{name}={value!r} must be a number or an array of numbers.")
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}={value!r} must be a number or an array of numbers.") from exc
    bad = ~np.isfinite(arr)
    if positive:
        bad |= (arr < 0.0) if allow_zero else (arr <= 0.0)
    if np.any(bad):
        first = arr[bad].ravel()[0] if arr.ndim else arr
        rule = ">= 0" if allow_zero else "> 0"
        raise InputError(f"{name}={float(first)!r} must be finite and {rule}.")
    if arr.ndim == 0:
        return float(arr)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class Oxide:
    """A tunnel oxide: a linear barrier between two identical electrodes.

    Parameters
    ----------
    thickness_nm : float or ndarray
        Physical thickness d [nm], > 0.
    barrier_eV : float or ndarray
        Barrier height phi_B at the cathode [eV], measured from the cathode electron reference
        (Fermi level of the electrode), > 0.
    mass_ratio : float or ndarray
        Tunnelling mass m_ox / m0 [dimensionless], > 0.
    k_rel : float or ndarray
        Relative permittivity [dimensionless], > 0 (3.9 for SiO2).
    material : str
        A label ("SiO2", or "custom").

    Examples
    --------
    >>> ox = Oxide.from_material("SiO2", thickness_nm=2.0)
    >>> (ox.barrier_eV, ox.mass_ratio, ox.k_rel)
    (3.1, 0.5, 3.9)
    """

    thickness_nm: float | np.ndarray = 1.5
    barrier_eV: float | np.ndarray = 3.1
    mass_ratio: float | np.ndarray = 0.5
    k_rel: float | np.ndarray = 3.9
    material: str = "SiO2"

    def __post_init__(self) -> None:
        for name in ("thickness_nm", "barrier_eV", "mass_ratio", "k_rel"):
            object.__setattr__(self, name, _field(getattr(self, name), name))
        if not isinstance(self.material, str):
            raise InputError(f"material={self.material!r} must be a string label.")

    @classmethod
    def from_material(cls, name: str, thickness_nm: float | np.ndarray, **overrides: Any) -> Oxide:
        """An oxide with the defaults of the table in docs/physics.md

        Parameters
        ----------
        name : str
            "SiO2", "Si3N4", "HfO2", "Al2O3", "ZrO2" or "La2O3" (case-insensitive).
        thickness_nm : float or ndarray
            Thickness [nm].
        **overrides
            ``barrier_eV``, ``mass_ratio`` or ``k_rel`` to replace the table's value.

        Raises
        ------
        InputError
            Unknown material, unknown override, or a material without a sourced tunnelling mass and no
            ``mass_ratio`` given.
        """
        row = material(name)
        unknown = set(overrides) - {"barrier_eV", "mass_ratio", "k_rel"}
        if unknown:
            raise InputError(
                f"Oxide.from_material got unknown override(s) {sorted(unknown)}; "
                "only barrier_eV, mass_ratio and k_rel can be overridden."
            )
        mass = overrides.get("mass_ratio", row.mass_ratio)
        if mass is None:
            raise InputError(
                f"material={row.name!r} has no sourced tunnelling mass: pass mass_ratio=... explicitly "
                "(e.g. a value extracted by Yeo, King & Hu 2002), or use SiO2, Si3N4 or HfO2."
            )
        return cls(
            thickness_nm=thickness_nm,
            barrier_eV=overrides.get("barrier_eV", row.barrier_eV),
            mass_ratio=mass,
            k_rel=overrides.get("k_rel", row.k_rel),
            material=row.name,
        )

    def with_thickness(self, thickness_nm: float | np.ndarray) -> Oxide:
        """The same oxide with another thickness [nm]."""
        return dataclasses.replace(self, thickness_nm=thickness_nm)

    @property
    def capacitance_F_per_m2(self) -> float | np.ndarray:
        """eps0 k / d [F/m^2]."""
        return VACUUM_PERMITTIVITY_F_PER_M * np.asarray(self.k_rel) / (np.asarray(self.thickness_nm) * 1e-9)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {f.name: (v.tolist() if isinstance(v := getattr(self, f.name), np.ndarray) else v)
                for f in dataclasses.fields(self)}


@dataclass(frozen=True, eq=False)
class StorageCell:
    """A charge-storage node that leaks through one oxide (docs/physics.md).

    The node voltage across the oxide is ``V = Q / C_T`` and ``dQ/dt = -A_ox J(V) - i_other_A``;
    a stored ("charged") bit starts at ``v_stored_V`` and reads wrong once ``V`` falls to ``v_sense_V``.

    Parameters
    ----------
    oxide : Oxide
        The tunnel oxide.
    tunnel_area_m2 : float or ndarray
        Tunnelling area A_ox [m^2], > 0.
    capacitance_F : float or ndarray or None
        Total node capacitance C_T [F]. None (floating gate with only C_tun and C_CG):
        ``C_T = eps0 k A_ox / ((1 - coupling_ratio) d)``, which follows the oxide thickness.
    coupling_ratio : float or ndarray
        Gate coupling alpha_G = C_CG / C_T [dimensionless] in [0, 1); used only when ``capacitance_F`` is None.
    v_stored_V : float or ndarray
        Oxide voltage of a freshly written charged cell [V], > ``v_sense_V``.
    v_sense_V : float or ndarray
        Oxide voltage at which the bit reads wrong [V], > 0.
    i_other_A : float or ndarray
        Leakage not through the oxide (junction, GIDL, thermally activated) [A], >= 0.
    temperature_K : float or ndarray
        Temperature [K] of the Tsu-Esaki supply function.
    electrode_mass_ratio : float or ndarray
        Electrode (supply) mass m_el / m0 [dimensionless]; 0.5 with ``band_bottom_eV=-0.1`` is the
        "Si-like" supply of docs/physics.md, 1.0 with -5.0 a metal.
    band_bottom_eV : float or ndarray
        Cathode band bottom below its Fermi level [eV], < 0.

    Examples
    --------
    >>> cell = StorageCell.floating_gate(Oxide.from_material("SiO2", 4.4))
    >>> round(float(cell.capacitance_total_F) * 1e18, 2), cell.electrons_stored
    (7.85, 97)
    """

    oxide: Oxide
    tunnel_area_m2: float | np.ndarray = 400e-18
    capacitance_F: float | np.ndarray | None = None
    coupling_ratio: float | np.ndarray = 0.6
    v_stored_V: float | np.ndarray = 2.0
    v_sense_V: float | np.ndarray = 1.0
    i_other_A: float | np.ndarray = 0.0
    temperature_K: float | np.ndarray = 300.0
    electrode_mass_ratio: float | np.ndarray = 0.5
    band_bottom_eV: float | np.ndarray = -0.1

    def __post_init__(self) -> None:
        if not isinstance(self.oxide, Oxide):
            raise InputError(f"oxide={self.oxide!r} must be an Oxide (e.g. Oxide.from_material('SiO2', 4.5)).")
        for name in ("tunnel_area_m2", "v_stored_V", "v_sense_V", "temperature_K", "electrode_mass_ratio"):
            object.__setattr__(self, name, _field(getattr(self, name), name))
        if self.capacitance_F is not None:
            object.__setattr__(self, "capacitance_F", _field(self.capacitance_F, "capacitance_F"))
        object.__setattr__(self, "i_other_A", _field(self.i_other_A, "i_other_A", allow_zero=True))
        alpha = _field(self.coupling_ratio, "coupling_ratio", allow_zero=True)
        if np.any(np.asarray(alpha) >= 1.0):
            raise InputError(f"coupling_ratio={self.coupling_ratio!r} must be in [0, 1): C_CG / C_T of the gate.")
        object.__setattr__(self, "coupling_ratio", alpha)
        bb = _field(self.band_bottom_eV, "band_bottom_eV", positive=False)
        if np.any(np.asarray(bb) >= 0.0):
            raise InputError(
                f"band_bottom_eV={self.band_bottom_eV!r} must be < 0: the cathode band bottom lies below its "
                "Fermi level (-0.1 for degenerate Si, -5 for a metal)."
            )
        object.__setattr__(self, "band_bottom_eV", bb)
        if np.any(np.asarray(self.v_sense_V) >= np.asarray(self.v_stored_V)):
            raise InputError(
                f"v_sense_V={self.v_sense_V!r} must be below v_stored_V={self.v_stored_V!r}: a bit reads wrong "
                "after it has lost part of its charge."
            )

    # -- constructors ---------------------------------------------------------------------------------
    @classmethod
    def floating_gate(cls, oxide: Oxide, *, width_nm: float = 20.0, coupling_ratio: float = 0.6,
                      v_stored_V: float = 2.0, v_sense_V: float = 1.0, **kw: Any) -> StorageCell:
        """A square floating-gate NAND cell (width x width tunnel area) with the Si-like supply.

        Defaults: 20 x 20 nm^2, alpha_G = 0.6, 2 V across the oxide when written, read wrong at 1 V
        (half the charge lost, SLC); docs/physics.md worked example.
        """
        area = (np.asarray(_field(width_nm, "width_nm")) * 1e-9) ** 2
        return cls(oxide, tunnel_area_m2=area, coupling_ratio=coupling_ratio, v_stored_V=v_stored_V,
                   v_sense_V=v_sense_V, **kw)

    @classmethod
    def dram(cls, oxide: Oxide, *, capacitance_F: float = 20e-15, v_dd_V: float = 1.1,
             sense_offset_V: float = 0.015, bitline_ratio: float = 6.0, **kw: Any) -> StorageCell:
        """A DRAM storage capacitor whose dielectric is ``oxide`` (tunnelling part of its leakage only).

        The dielectric sees V_DD/2 when written; the bit reads wrong when the node has decayed to
        ``V_DD/2 + sense_offset_V (C_s + C_BL)/C_s``, i.e. ``v_sense_V = sense_offset_V (1 + bitline_ratio)``
        across the dielectric. The area is chosen so that C_s = ``capacitance_F`` at the oxide's thickness
        (A = C_s d / (eps0 k)); a thinner or thicker dielectric on the same area changes C_s as 1/d.
        Real DRAM retention is dominated by junction/GIDL leakage: add it as ``i_other_A``.
        """
        cs = _field(capacitance_F, "capacitance_F")
        area = np.asarray(cs) / oxide.capacitance_F_per_m2
        v_sense = _field(sense_offset_V, "sense_offset_V") * (1.0 + _field(bitline_ratio, "bitline_ratio"))
        return cls(oxide, tunnel_area_m2=area, capacitance_F=None, coupling_ratio=0.0,
                   v_stored_V=0.5 * _field(v_dd_V, "v_dd_V"), v_sense_V=v_sense, **kw)

    def with_oxide(self, oxide: Oxide) -> StorageCell:
        """The same cell with another oxide (area and electrodes kept)."""
        return dataclasses.replace(self, oxide=oxide)

    def with_thickness(self, thickness_nm: float | np.ndarray) -> StorageCell:
        """The same cell with another oxide thickness [nm] (area kept; C_T follows 1/d if not fixed)."""
        return dataclasses.replace(self, oxide=self.oxide.with_thickness(thickness_nm))

    # -- derived quantities -----------------------------------------------------------------------------
    @property
    def capacitance_total_F(self) -> float | np.ndarray:
        """Total node capacitance C_T [F]."""
        if self.capacitance_F is not None:
            return self.capacitance_F
        return (self.oxide.capacitance_F_per_m2 * np.asarray(self.tunnel_area_m2)
                / (1.0 - np.asarray(self.coupling_ratio)))

    @property
    def capacitance_per_area_F_per_m2(self) -> float | np.ndarray:
        """C_T / A_ox [F/m^2]: with C_T from the oxide it is eps0 k / ((1 - alpha_G) d), area-free."""
        if self.capacitance_F is not None:
            return np.asarray(self.capacitance_F) / np.asarray(self.tunnel_area_m2)
        return self.oxide.capacitance_F_per_m2 / (1.0 - np.asarray(self.coupling_ratio))

    @property
    def electrons_stored(self) -> int | np.ndarray:
        """floor(C_T V_stored / q): electrons on the node when written [count]."""
        n = np.floor(np.asarray(self.capacitance_total_F) * np.asarray(self.v_stored_V) / ELEMENTARY_CHARGE_C)
        return int(n) if n.ndim == 0 else n.astype(np.int64)
