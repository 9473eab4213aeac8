"""The count report: the TMC of a range as an engineer's document (HTML or PDF)."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from trafficprn.api import report, report_pdf
from trafficprn.api.deps import ContextDep, SessionDep, SiteDep, read_access
from trafficprn.api.routes.data import NOT_FOUND, tmc_table
from trafficprn.api.schemas import ReportQuery

router = APIRouter(prefix="/api/reports", dependencies=[Depends(read_access)])


@router.get("/tmc", tags=["counts"], response_class=Response,
            summary="Turning-movement count report (HTML or PDF): diagram, interval tables per class, peak hour",
            responses={**NOT_FOUND, 200: {"content": {"text/html": {}, "application/pdf": {}}}})
def tmc_report(q: Annotated[ReportQuery, Query()], db: SessionDep, site: SiteDep, ctx: ContextDep) -> Response:
    """Same parameters and checks as `/api/counts/movements` (unknown camera 404, too long
    a range for the interval 422, bad parameters 422); the numbers are that route's table."""
    table, a, ref = tmc_table(q, db, site, ctx)
    local = ref.config is not None and site is not None
    doc = report.build_report(table, site=ref.site or (site.site.name if site else ""),
                              driving_side=site.site.driving_side if local and site else "right")
    stamp = time.strftime("%Y%m%dT%H%M", time.gmtime(a))
    prefix = f"{ref.site}-" if ref.site else ""
    name = f"tmc-report-{prefix}{q.camera}-{stamp}-{q.interval}"
    if q.format == "pdf":
        return Response(report_pdf.to_pdf(doc), media_type="application/pdf",
                        headers={"Content-Disposition": f'inline; filename="{name}.pdf"'})
    return Response(report.to_html(doc), media_type="text/html; charset=utf-8",
                    headers={"Content-Disposition": f'inline; filename="{name}.html"'})
