"""The physics: from an oxide to per-bit flip rates (docs/physics.md).

oxide (thickness, barrier, mass) -> WKB transmission -> tunnelling current J(V) -> retention time of a
storage cell -> flip probability after a storage time (three models) -> asymmetric / per-plane
:class:`~wkbnoise.rates.FlipRates`.
"""

from __future__ import annotations

from .cells import Oxide, StorageCell
from .current import CURRENT_MODELS, current_density_A_per_m2, fn_coefficients, log_current_density
from .materials import MATERIALS, Material, material
from .retention import (
    FLIP_MODELS,
    counting_mean_time_s,
    flip_probability,
    flip_rates,
    log_flip_probability,
    log_retention_time,
    memory_cell,
    memory_flip_rates,
    plane_rates,
    retention_thickness_nm,
    retention_time_s,
    symmetric_rate,
    thickness_for,
)
from .transmission import barrier_integral, log_transmission, transmission

__all__ = [
    "Oxide",
    "StorageCell",
    "log_transmission",
    "transmission",
    "current_density_A_per_m2",
    "fn_coefficients",
    "retention_time_s",
    "flip_probability",
    "flip_rates",
    "symmetric_rate",
    "thickness_for",
    "plane_rates",
    # docs/internals.md
    "memory_flip_rates",
    # extras
    "memory_cell",
    "log_current_density",
    "log_retention_time",
    "log_flip_probability",
    "retention_thickness_nm",
    "counting_mean_time_s",
    "barrier_integral",
    "material",
    "Material",
    "MATERIALS",
    "CURRENT_MODELS",
    "FLIP_MODELS",
]
