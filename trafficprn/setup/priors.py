"""Real-world vehicle sizes that set the metric scale of a calibration from traffic.

The prior is a published car-fleet average, not anything the simulator draws: Inovev
(an automotive market consultancy) measured the passenger cars produced in Europe, and
reported a 2022 average of 4.36 m length, 1.81 m width and 1.55 m height (up from
4.16 m, 1.71 m and 1.48 m in 2000). Reported by SP-X in Die Welt, "Jedes Jahr ein
Zentimeter mehr: Laengenwachstum bei Pkw", April 2023
(https://www.welt.de/motor/news/article244937978/), and in GAI Connects magazine,
edition 02-2023. The width agrees with Transport & Environment's count of the 100
best-selling new cars in Europe (180.3 cm in the first half of 2023, January 2024).

It is an average over the new-car mix (superminis to SUVs), so one car may be 20 %
off it; the scale comes from the median over many cars. On-road fleets are a few years
older than new production and slightly smaller, and other regions differ (US new
vehicles are much longer): where the site is known, a user-given lane width is the
better scale.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VehicleSizePrior:
    """Mean outer dimensions of a vehicle class, metres, and where the figure comes from."""

    length_m: float
    width_m: float
    height_m: float
    source: str


EUROPEAN_CAR_2022 = VehicleSizePrior(
    length_m=4.36,
    width_m=1.81,
    height_m=1.55,
    source="Inovev 2022 average of passenger cars produced in Europe (4.36 x 1.81 x 1.55 m; "
    "SP-X / Die Welt, April 2023): a car-fleet average",
)
