"""The turning-movement count report: what engineers hand over (the intersection diagram
with per-movement volumes for the peak hour and the whole range, the interval table per
vehicle class, peak hour and PHF, heavy-vehicle share, incomplete intervals marked).

Pure shaping of a `tmc.TmcTable`: `build_report` gathers the numbers, `diagram` lays the
intersection out as drawing primitives (shared by the HTML's inline SVG and the PDF, see
`report_pdf`), `to_html` writes a self-contained page.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Literal

from trafficprn.api.tmc import HEAVY, MOVEMENTS, TmcRow, TmcTable, column_name
from trafficprn.timebins import interval_label

MOVEMENT_NAMES = {"L": "left", "T": "through", "R": "right", "U": "U-turn"}
COMPASS_DEG = {"N": 0.0, "NE": 45.0, "E": 90.0, "SE": 135.0, "S": 180.0, "SW": 225.0, "W": 270.0, "NW": 315.0}
MOVEMENT_COLOURS = {"L": "#0072b2", "T": "#333333", "R": "#009e73", "U": "#cc79a7"}  # colour-blind safe


@dataclass(frozen=True)
class MovementVolume:
    leg: str
    movement: str
    whole: int
    peak: int | None
    heavy: int


@dataclass(frozen=True)
class ClassTable:
    vehicle_class: str
    rows: list[tuple[TmcRow, dict[str, int], int]]  # (interval row, per leg_movement, total)
    totals: dict[str, int]
    total: int


@dataclass
class Report:
    site: str
    camera: str
    timezone: str
    driving_side: Literal["right", "left"]
    from_label: str
    to_label: str
    table: TmcTable
    movements: list[MovementVolume]
    classes: list[ClassTable]
    incomplete: int
    not_counted: list[str] = field(default_factory=list)  # classes with no vehicle in the range


def leg_movement(leg: str, movement: str) -> str:
    return f"{leg}_{movement}"


def build_report(table: TmcTable, *, site: str, driving_side: Literal["right", "left"] = "right") -> Report:
    """The report's numbers from a TMC table (the same table the CSV is written from)."""
    classes = list(dict.fromkeys(c.rsplit("_", 1)[1] for c in table.columns))
    peak = table.peak_hour
    in_peak = [r for r in table.rows if peak is not None and peak.start_ts <= r.start_ts < peak.end_ts]
    movements = []
    for leg in table.legs:
        for m in MOVEMENTS:
            cols = [column_name(leg, m, k) for k in classes]
            movements.append(MovementVolume(
                leg, m, sum(table.totals[c] for c in cols),
                sum(r.count(c) for r in in_peak for c in cols) if peak is not None else None,
                sum(table.totals[column_name(leg, m, k)] for k in classes if k in HEAVY)))
    per_class, empty = [], []
    for k in classes:
        keys = [(leg, m) for leg in table.legs for m in MOVEMENTS]
        rows = []
        for r in table.rows:
            cells = {leg_movement(leg, m): r.count(column_name(leg, m, k)) for leg, m in keys}
            rows.append((r, cells, sum(cells.values())))
        totals = {leg_movement(leg, m): table.totals[column_name(leg, m, k)] for leg, m in keys}
        total = sum(totals.values())
        if total:
            per_class.append(ClassTable(k, rows, totals, total))
        else:
            empty.append(k)
    first = table.rows[0].start_ts if table.rows else 0.0
    last = table.rows[-1].end_ts if table.rows else 0.0
    return Report(site, table.camera, table.timezone, driving_side, interval_label(first, table.timezone),
                  interval_label(last, table.timezone), table, movements, per_class,
                  sum(not r.complete for r in table.rows), empty)


# ---------------------------------------------------------------- the diagram
@dataclass(frozen=True)
class Line:
    points: list[tuple[float, float]]
    width: float
    colour: str
    arrow: bool = False


@dataclass(frozen=True)
class Poly:
    points: list[tuple[float, float]]
    colour: str


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    anchor: Literal["start", "middle", "end"] = "middle"
    size: float = 11.0
    bold: bool = False
    colour: str = "#000000"


DIAGRAM_PX = 600.0
_ARM_W = 190.0
_BASE = 145.0  # where the movement arrows start, from the centre
# arrow shapes in the approach's frame: (lateral to the driver's right, along the heading)
_SHAPES = {"T": [(0.0, 0.0), (0.0, 40.0)], "L": [(0.0, 0.0), (0.0, 22.0), (-18.0, 22.0)],
           "R": [(0.0, 0.0), (0.0, 22.0), (18.0, 22.0)], "U": [(0.0, 0.0), (0.0, 26.0), (-12.0, 26.0), (-12.0, 10.0)]}


def _leg_angles(legs: list[str]) -> dict[str, float]:
    """Compass bearing (deg, clockwise from north = up) of each leg: its name where it is a
    compass point, else spread evenly."""
    if all(leg.upper() in COMPASS_DEG for leg in legs):
        return {leg: COMPASS_DEG[leg.upper()] for leg in legs}
    return {leg: 360.0 * i / max(1, len(legs)) for i, leg in enumerate(legs)}


Shape = Line | Poly | Text


def diagram(report: Report) -> list[Shape]:
    """The intersection, north up, in a DIAGRAM_PX square: one arm per leg, per approach an
    arrow per movement with its whole-range volume and, in brackets, its peak-hour volume."""
    c = DIAGRAM_PX / 2
    out: list[Shape] = []
    angles = _leg_angles(report.table.legs)
    half = _ARM_W / 2
    for deg in angles.values():
        d = (math.sin(math.radians(deg)), -math.cos(math.radians(deg)))  # outward, y down
        n = (-d[1] * half, d[0] * half)
        out.append(Poly([(c + n[0], c + n[1]), (c + d[0] * 290 + n[0], c + d[1] * 290 + n[1]),
                         (c + d[0] * 290 - n[0], c + d[1] * 290 - n[1]), (c - n[0], c - n[1])], "#e6e6e6"))
    out.append(Poly([(c - half, c - half), (c + half, c - half), (c + half, c + half), (c - half, c + half)], "#e6e6e6"))
    side = 1.0 if report.driving_side == "right" else -1.0
    order = ["U", "L", "T", "R"] if side > 0 else ["L", "T", "R", "U"]
    volumes = {(v.leg, v.movement): v for v in report.movements}
    for leg, deg in angles.items():
        d = (math.sin(math.radians(deg)), -math.cos(math.radians(deg)))
        h = (-d[0], -d[1])  # heading in
        r = (-h[1], h[0])  # the driver's right
        vertical = abs(d[1]) >= abs(d[0])
        out.append(Text(c + d[0] * 272, c + d[1] * 272 + 5, leg, size=16, bold=True))
        for slot, m in enumerate(order):
            lat = side * (12.0 + 24.0 * slot) if side > 0 else side * (12.0 + 24.0 * (3 - slot))
            pts = []
            for a, b in _SHAPES[m]:
                a = a if side > 0 or m != "U" else -a  # U-turns go round the far side
                x = c + d[0] * _BASE + r[0] * lat + r[0] * a + h[0] * b
                y = c + d[1] * _BASE + r[1] * lat + r[1] * a + h[1] * b
                pts.append((x, y))
            v = volumes.get((leg, m))
            colour = MOVEMENT_COLOURS[m]
            out.append(Line(pts, 2.5 if v and v.whole else 1.0, colour if v and v.whole else "#999999", arrow=True))
            whole = str(v.whole) if v else "0"
            peak = "" if v is None or v.peak is None else f"({v.peak})"
            bx, by = c + d[0] * (_BASE + 12) + r[0] * lat, c + d[1] * (_BASE + 12) + r[1] * lat
            if vertical:  # whole range next to the arrow, the peak hour beyond it
                near, far = (by + 14, by + 27) if d[1] > 0 else (by - 4, by - 17)
                out.append(Text(bx, near, whole, size=10, colour=colour, bold=True))
                out.append(Text(bx, far, peak, size=10, colour=colour))
            else:
                out.append(Text(bx, by + 4, f"{whole} {peak}".strip(), anchor="start" if d[0] > 0 else "end",
                                size=10, colour=colour))
    return out


def _svg(items: list[Shape]) -> str:
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {DIAGRAM_PX:.0f} {DIAGRAM_PX:.0f}" '
             f'width="{DIAGRAM_PX:.0f}" height="{DIAGRAM_PX:.0f}" role="img" aria-label="intersection diagram">',
             '<defs><marker id="head" viewBox="0 0 10 10" refX="8" refY="5" markerWidth="5" markerHeight="5" '
             'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="context-stroke"/></marker></defs>']
    for it in items:
        if isinstance(it, Poly):
            pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in it.points)
            parts.append(f'<polygon points="{pts}" fill="{it.colour}"/>')
        elif isinstance(it, Line):
            pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in it.points)
            head = ' marker-end="url(#head)"' if it.arrow else ""
            cap = "round" if it.arrow else "butt"
            parts.append(f'<polyline points="{pts}" fill="none" stroke="{it.colour}" stroke-width="{it.width}" '
                         f'stroke-linecap="{cap}" stroke-linejoin="round"{head}/>')
        else:
            weight = ' font-weight="bold"' if it.bold else ""
            parts.append(f'<text x="{it.x:.1f}" y="{it.y:.1f}" text-anchor="{it.anchor}" font-size="{it.size}" '
                         f'fill="{it.colour}"{weight}>{html.escape(it.text)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


# ---------------------------------------------------------------- HTML
_CSS = """
body { font: 13px/1.4 system-ui, sans-serif; margin: 24px; color: #111; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 15px; margin: 22px 0 6px; }
.meta { color: #444; } table { border-collapse: collapse; margin: 4px 0 10px; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; } th { background: #f2f2f2; }
td.t, th.t { text-align: left; white-space: nowrap; } tr.incomplete td { background: #fff3cd; }
tr.total td { font-weight: bold; border-top: 2px solid #666; } .kpi span { margin-right: 24px; white-space: nowrap; }
"""


def _class_table_html(report: Report, ct: ClassTable) -> str:
    legs = report.table.legs
    head = "".join(f'<th colspan="4">{html.escape(leg)}</th>' for leg in legs)
    sub = "".join(f"<th>{m}</th>" for _ in legs for m in MOVEMENTS)
    lines = [f'<table><thead><tr><th class="t" rowspan="2">Interval start</th>{head}<th rowspan="2">Total</th></tr>'
             f"<tr>{sub}</tr></thead><tbody>"]
    for row, cells, total in ct.rows:
        mark = "" if row.complete else " *"
        cls = "" if row.complete else ' class="incomplete"'
        tds = "".join(f"<td>{cells[leg_movement(leg, m)]}</td>" for leg in legs for m in MOVEMENTS)
        lines.append(f'<tr{cls}><td class="t">{html.escape(row.start)}{mark}</td>{tds}<td>{total}</td></tr>')
    tds = "".join(f"<td>{ct.totals[leg_movement(leg, m)]}</td>" for leg in legs for m in MOVEMENTS)
    lines.append(f'<tr class="total"><td class="t">Total</td>{tds}<td>{ct.total}</td></tr></tbody></table>')
    return "".join(lines)


def summary_lines(report: Report) -> list[str]:
    """The key figures, as sentences (the HTML and the PDF print the same)."""
    t = report.table
    peak = t.peak_hour
    out = [f"Total vehicles: {t.total}"]
    if peak is not None:
        phf = "n/a" if peak.phf is None else f"{peak.phf:.2f}"
        out.append(f"Peak hour: {peak.start} to {interval_label(peak.end_ts, t.timezone)}, "
                   f"{peak.volume} vehicles, PHF {phf}")
    else:
        out.append("Peak hour: none (no complete hour with vehicles in the range)")
    out.append("Heavy vehicles (bus + truck): "
               + ("n/a" if t.heavy_share is None else f"{100 * t.heavy_share:.1f} %"))
    out.append(f"Incomplete intervals (camera down or not watched, marked *): {report.incomplete}")
    if t.unassigned:
        out.append(f"Vehicles without a complete movement (not in the table): {t.unassigned}")
    return out


def to_html(report: Report) -> str:
    """A self-contained HTML page (inline SVG and CSS, no scripts)."""
    t = report.table
    esc = html.escape
    mv_rows = "".join(
        f'<tr><td class="t">{esc(v.leg)}</td><td class="t">{v.movement} ({MOVEMENT_NAMES[v.movement]})</td>'
        f'<td>{v.whole}</td><td>{"" if v.peak is None else v.peak}</td><td>{v.heavy}</td></tr>'
        for v in report.movements)
    classes = "".join(f"<h2>{esc(ct.vehicle_class)} per {t.interval_minutes} min</h2>{_class_table_html(report, ct)}"
                      for ct in report.classes)
    none = (f'<p class="meta">None counted: {esc(", ".join(report.not_counted))}.</p>' if report.not_counted else "")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Turning-movement count {esc(report.camera)}</title>
<style>{_CSS}</style></head><body>
<h1>Turning-movement count</h1>
<p class="meta">Site <b>{esc(report.site)}</b> &middot; camera <b>{esc(report.camera)}</b> &middot;
{esc(report.from_label)} to {esc(report.to_label)} &middot; time zone {esc(report.timezone)} &middot;
{t.interval_minutes}-minute intervals</p>
<div class="kpi">{"".join(f"<span>{esc(s)}</span>" for s in summary_lines(report))}</div>
<h2>Intersection (volume over the range, in brackets the peak hour)</h2>
{_svg(diagram(report))}
<h2>Movement totals</h2>
<table id="movement-totals"><thead><tr><th class="t">Leg</th><th class="t">Movement</th><th>Range</th>
<th>Peak hour</th><th>Heavy</th></tr></thead><tbody>{mv_rows}</tbody></table>
{classes}{none}
<p class="meta">* incomplete interval: the camera was down or not watched for part of it; its counts are what was seen.</p>
</body></html>
"""
