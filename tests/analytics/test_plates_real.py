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
from trafficprn.evaluation_plates import (
    PlateSample,
    load_manifest,
    load_plate_sets,
    raw_reader,
    region_of,
    score_plates,
)

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
    """Tune-set crops of states whose name or slogan is printed large (Texas, Delaware,
    Nevada, Pennsylvania, New Hampshire, Hawaii): the reader picks the number's row, and
    never reads the state name or a slogan word instead."""
    crops = _sets(["openalpr-usimages"])["openalpr-usimages"]
    picked = [s for state in ("tx", "de", "nv", "pa", "nh", "hi") for s in [c for c in crops if c.name.startswith(state)][:4]]
    assert len(picked) >= 20
    reader = PlateReader("us", backend)
    texts = [r.text if (r := reader.read(s.crop())) is not None else "" for s in picked]
    assert not [t for t in texts if t and STATE_WORD.search(t)]
    exact = sum(t == s.text for t, s in zip(texts, picked, strict=True))
    assert exact >= 0.6 * len(picked), list(zip(texts, [s.text for s in picked], strict=True))


@pytest.mark.parametrize("set_id", ["openalpr-endtoend-eu", "openalpr-endtoend-br", "openalpr-endtoend-us"])
def test_regression_on_part_of_the_eval_sets(backend: RapidOcrBackend, set_id: str) -> None:
    """The first 20 plates of each eval set (box given; never tuned on), with auto and with
    the region's format: regression floors below the full sets' rates
    (bench_plates.py --sections real), not the acceptance figures."""
    samples = _sets([set_id])[set_id][:20]
    raw = score_plates(raw_reader(backend), samples)
    region = score_plates(PlateReader(region_of(set_id), backend).read, samples)
    auto = score_plates(PlateReader("auto", backend).read, samples)
    assert region.exact >= raw.exact - 1, region.rows
    assert region.rate >= 0.7 and auto.rate >= 0.65, (region.rows, auto.rows)


def test_manifest_keeps_tune_and_eval_apart() -> None:
    """plates.yaml: one tune set; the eval sets are other folders of the source, each with a region."""
    sources = load_manifest()
    tune = [s for s in sources if s.role == "tune"]
    evals = [s for s in sources if s.role == "eval"]
    assert [s.id for s in tune] == ["openalpr-usimages"]
    assert len(evals) >= 3 and {s.region for s in evals} >= {"us", "eu", "br"}
    for s in evals:
        assert not s.path.startswith(tune[0].path) and not tune[0].path.startswith(s.path)
        assert s.licence and s.commit == tune[0].commit
