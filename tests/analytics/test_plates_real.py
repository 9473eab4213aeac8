"""Plate reading on real photographs from the openalpr/benchmarks mirror (AGPL-3.0, read
at run time, never committed; see trafficprn/datasets/plates.yaml). Skipped without the
mirror (set TRAFFICPRN_MIRROR, default /work/.mirror)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from trafficprn.analytics.ocr import RapidOcrBackend
from trafficprn.analytics.plates import PlateReader
from trafficprn.errors import InputError
from trafficprn.evaluation_plates import PlateSample, load_plate_sets, raw_reader, region_of, score_plates

MIRROR = Path(os.environ.get("TRAFFICPRN_MIRROR", "/work/.mirror"))
STATES = ["ALABAMA", "ALASKA", "ARIZONA", "ARKANSAS", "CALIFORNIA", "COLORADO", "CONNECTICUT", "DELAWARE", "FLORIDA", "GEORGIA", "HAWAII", "IDAHO", "ILLINOIS", "INDIANA", "IOWA", "KANSAS", "KENTUCKY", "LOUISIANA", "MAINE", "MARYLAND", "MASSACHUSETTS", "MICHIGAN", "MINNESOTA", "MISSISSIPPI", "MISSOURI", "MONTANA", "NEBRASKA", "NEVADA", "NEWHAMPSHIRE", "NEWJERSEY", "NEWMEXICO", "NEWYORK", "OHIO", "OKLAHOMA", "OREGON", "PENNSYLVANIA", "TEXAS", "UTAH", "VERMONT", "VIRGINIA", "WASHINGTON", "WISCONSIN", "WYOMING"]
STATE_WORD = re.compile("|".join(sorted(STATES, key=len, reverse=True)) + "|STATE")


def _sets(ids: list[str]) -> dict[str, list[PlateSample]]:
    try:
        return load_plate_sets(MIRROR, ids=ids)
    except InputError as exc:
        pytest.skip(f"openalpr/benchmarks mirror not available: {exc}")


@pytest.fixture(scope="module")
def backend() -> RapidOcrBackend:
    return RapidOcrBackend(threads=1)


def test_state_name_is_not_read_for_the_plate(backend: RapidOcrBackend) -> None:
    """Tune-set crops whose whole-crop raw read contains a state name or slogan word: the
    reader picks the number's row and reads no state name instead."""
    crops = _sets(["openalpr-usimages"])["openalpr-usimages"][:240]
    raw = raw_reader(backend)
    hit = [s for s in crops if (r := raw(s.crop())) is not None and STATE_WORD.search(r.text)]
    assert len(hit) >= 5, "too few crops whose raw read is a state name to test with"
    reader = PlateReader("us", backend)
    reads = [reader.read(s.crop()) for s in hit]
    texts = [r.text if r is not None else "" for r in reads]
    assert not any(t and STATE_WORD.fullmatch(t) for t in texts)
    exact = sum(t == s.text for t, s in zip(texts, hit, strict=True))
    assert exact >= 0.5 * len(hit)


@pytest.mark.parametrize("set_id", ["openalpr-endtoend-eu", "openalpr-endtoend-br", "openalpr-endtoend-us"])
def test_regression_on_part_of_the_eval_sets(backend: RapidOcrBackend, set_id: str) -> None:
    """The first 30 plates of each eval set (box given), with auto and with the region's
    format: reads at least as many as the raw engine, and at least 70 % exact."""
    samples = _sets([set_id])[set_id][:30]
    raw = score_plates(raw_reader(backend), samples)
    for spec in ("auto", region_of(set_id)):
        score = score_plates(PlateReader(spec, backend).read, samples)
        assert score.exact >= raw.exact - 1, (spec, score.rows)
        assert score.rate >= 0.7, (spec, score.rows)
