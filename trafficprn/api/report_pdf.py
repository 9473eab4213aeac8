"""The count report as a PDF (fpdf2, pure Python): the same numbers and diagram as the
HTML (`report`), A4 landscape, the interval tables paginated with their header repeated."""

from __future__ import annotations

import math

from fpdf import FPDF

from trafficprn.api.report import (
    DIAGRAM_PX,
    MOVEMENT_NAMES,
    ClassTable,
    Line,
    Poly,
    Report,
    Shape,
    diagram,
    leg_movement,
    summary_lines,
)
from trafficprn.api.tmc import MOVEMENTS

PAGE_W, PAGE_H, MARGIN = 297.0, 210.0, 12.0
ROW_H = 4.6


def _latin1(text: str) -> str:
    """The core fonts are Latin-1: other characters (arrows, CJK in a leg name) become '?'."""
    return text.encode("latin-1", "replace").decode("latin-1")


def _rgb(colour: str) -> tuple[int, int, int]:
    c = colour.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def _draw_diagram(pdf: FPDF, items: list[Shape], x0: float, y0: float, size_mm: float) -> None:
    k = size_mm / DIAGRAM_PX
    for it in items:
        if isinstance(it, Poly):
            pdf.set_fill_color(*_rgb(it.colour))
            pdf.polygon([(x0 + x * k, y0 + y * k) for x, y in it.points], style="F")
        elif isinstance(it, Line):
            pdf.set_draw_color(*_rgb(it.colour))
            pdf.set_line_width(it.width * k)
            pts = [(x0 + x * k, y0 + y * k) for x, y in it.points]
            pdf.polyline(pts)
            if it.arrow and len(pts) >= 2:
                (ax, ay), (bx, by) = pts[-2], pts[-1]
                n = math.hypot(bx - ax, by - ay) or 1.0
                ux, uy = (bx - ax) / n, (by - ay) / n
                head = 2.2
                pdf.set_fill_color(*_rgb(it.colour))
                pdf.polygon([(bx + ux * head * 0.6, by + uy * head * 0.6),
                             (bx - ux * head + uy * head * 0.6, by - uy * head - ux * head * 0.6),
                             (bx - ux * head - uy * head * 0.6, by - uy * head + ux * head * 0.6)], style="F")
        else:
            pdf.set_font("Helvetica", "B" if it.bold else "", it.size * k * 2.83)
            pdf.set_text_color(*_rgb(it.colour))
            text = _latin1(it.text)
            w = pdf.get_string_width(text)
            dx = {"start": 0.0, "middle": -w / 2, "end": -w}[it.anchor]
            pdf.text(x0 + it.x * k + dx, y0 + it.y * k, text)
    pdf.set_text_color(0, 0, 0)
    pdf.set_draw_color(0, 0, 0)
    pdf.set_line_width(0.2)


def _movement_table(pdf: FPDF, report: Report, x: float, y: float) -> None:
    widths = (14.0, 30.0, 20.0, 20.0, 16.0)
    pdf.set_xy(x, y)
    pdf.set_font("Helvetica", "B", 8)
    for w, head in zip(widths, ("Leg", "Movement", "Range", "Peak hour", "Heavy"), strict=True):
        pdf.cell(w, ROW_H, head, border=1, align="L" if head in ("Leg", "Movement") else "R", fill=True)
    pdf.set_font("Helvetica", "", 8)
    for v in report.movements:
        pdf.set_xy(x, pdf.get_y() + ROW_H)
        cells = (_latin1(v.leg), f"{v.movement} ({MOVEMENT_NAMES[v.movement]})", str(v.whole),
                 "" if v.peak is None else str(v.peak), str(v.heavy))
        for i, (w, text) in enumerate(zip(widths, cells, strict=True)):
            pdf.cell(w, ROW_H, text, border=1, align="L" if i < 2 else "R")


def _class_table(pdf: FPDF, report: Report, ct: ClassTable) -> None:
    legs = report.table.legs
    time_w = 34.0
    n = len(legs) * len(MOVEMENTS) + 1
    w = min(12.0, (PAGE_W - 2 * MARGIN - time_w) / n)

    def header() -> None:
        pdf.set_font("Helvetica", "B", 7)
        pdf.set_fill_color(242, 242, 242)
        pdf.cell(time_w, ROW_H, "", border="LTR", fill=True)
        for leg in legs:
            pdf.cell(w * len(MOVEMENTS), ROW_H, _latin1(leg), border=1, align="C", fill=True)
        pdf.cell(w, ROW_H, "", border="LTR", fill=True, new_x="LMARGIN", new_y="NEXT")
        pdf.cell(time_w, ROW_H, "Interval start", border="LBR", fill=True)
        for _ in legs:
            for m in MOVEMENTS:
                pdf.cell(w, ROW_H, m, border=1, align="R", fill=True)
        pdf.cell(w, ROW_H, "Total", border="LBR", align="R", fill=True, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 7)

    pdf.set_font("Helvetica", "B", 10)
    if pdf.get_y() > PAGE_H - MARGIN - 4 * ROW_H:
        pdf.add_page()
    pdf.cell(0, 7, _latin1(f"{ct.vehicle_class} per {report.table.interval_minutes} min"), new_x="LMARGIN", new_y="NEXT")
    header()
    rows = [(f"{r.start}{'' if r.complete else ' *'}", cells, total, r.complete) for r, cells, total in ct.rows]
    rows.append(("Total", ct.totals, ct.total, True))
    for label, cells, total, complete in rows:
        if pdf.get_y() > PAGE_H - MARGIN - ROW_H:
            pdf.add_page()
            header()
        fill = not complete
        pdf.set_fill_color(255, 243, 205)
        pdf.set_font("Helvetica", "B" if label == "Total" else "", 7)
        pdf.cell(time_w, ROW_H, _latin1(label), border=1, fill=fill)
        for leg in legs:
            for m in MOVEMENTS:
                pdf.cell(w, ROW_H, str(cells[leg_movement(leg, m)]), border=1, align="R", fill=fill)
        pdf.cell(w, ROW_H, str(total), border=1, align="R", fill=fill, new_x="LMARGIN", new_y="NEXT")
    pdf.set_fill_color(242, 242, 242)


def to_pdf(report: Report) -> bytes:
    """The report as PDF bytes: page 1 the header, key figures, diagram and movement
    totals; then the interval table of each vehicle class that was counted."""
    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    pdf.set_title(_latin1(f"Turning-movement count {report.camera}"))
    pdf.set_creator("trafficprn")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 8, "Turning-movement count", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    t = report.table
    pdf.cell(0, 5, _latin1(f"Site {report.site}   Camera {report.camera}   {report.from_label} to {report.to_label}   "
                           f"Time zone {report.timezone}   {t.interval_minutes}-minute intervals"),
             new_x="LMARGIN", new_y="NEXT")
    for line in summary_lines(report):
        pdf.cell(0, 4.5, _latin1(line), new_x="LMARGIN", new_y="NEXT")
    top = pdf.get_y() + 2
    size = PAGE_H - MARGIN - top
    pdf.set_font("Helvetica", "", 7)
    pdf.text(MARGIN, top + 2, "Volume over the range, in brackets the peak hour")
    _draw_diagram(pdf, diagram(report), MARGIN, top + 3, size - 3)
    pdf.set_fill_color(242, 242, 242)
    pdf.set_font("Helvetica", "B", 10)
    pdf.text(MARGIN + size + 8, top + 2, "Movement totals")
    _movement_table(pdf, report, MARGIN + size + 8, top + 4)
    if report.classes:
        pdf.add_page()
        for ct in report.classes:
            _class_table(pdf, report, ct)
            pdf.ln(3)
    pdf.set_font("Helvetica", "", 7)
    if pdf.get_y() > PAGE_H - MARGIN - 10:
        pdf.add_page()
    note = "* incomplete interval: the camera was down or not watched for part of it; its counts are what was seen."
    if report.not_counted:
        note = f"None counted: {', '.join(report.not_counted)}.   " + note
    pdf.multi_cell(0, 4, _latin1(note))
    return bytes(pdf.output())
