"""The setup routes: suggestion, calibration check grid, map pairs, calibration save."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import seeding
import yaml
from api_helpers import API_KEY, example_site_with_two_cameras, make_client
from suggestions import suggested_site

from trafficprn.camera.calibration import Calibration
from trafficprn.config import load_site

KEY = {"X-API-Key": API_KEY}
CAM = seeding.CAMERA


def _comments(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith("#") or " # " in line]


def _calibration_body(site_path: Path, camera: str) -> dict[str, Any]:
    cam = next(c for c in yaml.safe_load(site_path.read_text())["cameras"] if c["name"] == camera)
    return {"lens": cam["lens"], "calibration": cam["calibration"]}


# ---------------------------------------------------------------- suggestion
def test_suggestion_from_beside_the_site_file(seeded_sqlite: str, site_path: Path) -> None:
    with make_client(seeded_sqlite, site_path) as c:
        res = c.get(f"/api/cameras/{CAM}/suggestion")
        assert res.status_code == 404 and "setup suggest" in res.json()["detail"]
        assert c.get("/api/cameras/nope/suggestion").status_code == 404
        cam = suggested_site(site_path, site_path.parent / "suggested.yaml", CAM)
        res = c.get(f"/api/cameras/{CAM}/suggestion")
        assert res.status_code == 200, res.text
        body = res.json()
        assert body["origin"] == "server" and body["image_size"] == [1280, 720]
        assert [leg["entry"] for leg in body["legs"]] == [leg["entry"] for leg in cam["legs"]]
        assert {z["name"]: z["tracks"] for z in body["suggestion"]["legs"]} == {"N": 40, "E": 30, "S": 20, "W": 10}
        assert {z["name"]: z["tracks"] for z in body["suggestion"]["lanes"]} == {"N-1": 12, "S-1": 11}
        assert body["suggestion"]["calibration"]["method"] == "traffic"
        assert body["calibration"]["points"][1]["ground_m"] == [30.6, 0.0]
        assert body["lens"]["model"] == "pinhole"
        (site_path.parent / "suggested.yaml").write_text("site: {name: x}\ncameras: [{name: cam-1}]\n")
        res = c.get(f"/api/cameras/{CAM}/suggestion")
        assert res.status_code == 409 and "cameras[0]" in res.json()["detail"]


def test_suggestion_upload_validates_and_names_the_field(seeded_sqlite: str, site_path: Path) -> None:
    out = site_path.parent / "other.yaml"
    suggested_site(site_path, out, CAM)
    text = out.read_text()
    with make_client(seeded_sqlite, site_path) as c:
        assert c.post(f"/api/cameras/{CAM}/suggestion", json={"yaml": text}).status_code == 401
        res = c.post(f"/api/cameras/{CAM}/suggestion", json={"yaml": text}, headers=KEY)
        assert res.status_code == 200, res.text
        assert res.json()["origin"] == "upload" and len(res.json()["suggestion"]["lanes"]) == 2
        data = yaml.safe_load(text)
        cases = [
            (lambda d: d["cameras"][0]["legs"][0].__setitem__("entry", [[1, 2], [3, 4]]), "cameras[0].legs[0].entry"),
            (lambda d: d["cameras"][0]["suggestion"]["legs"][0].__setitem__("tracks", -1),
             "cameras[0].suggestion.legs[0].tracks"),
            (lambda d: d["cameras"][0]["lens"].__setitem__("image_size", [640, 360]), "cameras[0].lens.image_size"),
            (lambda d: d["cameras"][0].__setitem__("name", "cam-9"), "cameras"),
        ]
        for edit, field in cases:
            broken = json.loads(json.dumps(data))
            edit(broken)
            res = c.post(f"/api/cameras/{CAM}/suggestion", json={"yaml": yaml.safe_dump(broken)}, headers=KEY)
            assert res.status_code == 422 and field in res.json()["detail"], (field, res.text)
        res = c.post(f"/api/cameras/{CAM}/suggestion", json={"yaml": "site: [unclosed\n"}, headers=KEY)
        assert res.status_code == 422 and "not valid YAML" in res.json()["detail"]
        bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"{k}: &{k} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
            for p, k in zip("abcdefg", "bcdefgh", strict=True))
        res = c.post(f"/api/cameras/{CAM}/suggestion", json={"yaml": bomb}, headers=KEY)
        assert res.status_code == 422 and "values" in res.json()["detail"]
        res = c.post(f"/api/cameras/{CAM}/suggestion", json={"yaml": "x" * 2_000_000}, headers=KEY)
        assert res.status_code == 413


# ---------------------------------------------------------------- check grid and map pairs
def test_check_grid_of_the_saved_and_a_proposed_calibration(seeded_sqlite: str, site_path: Path) -> None:
    with make_client(seeded_sqlite, site_path) as c:
        res = c.get(f"/api/cameras/{CAM}/calibration/check")
        assert res.status_code == 200, res.text
        saved = res.json()
        assert saved["method"] == "points" and saved["rms_m"] < 1e-6 and saved["spacing_m"] == 5.0
        cal = Calibration.from_camera(load_site(site_path).cameras[0])
        for line in saved["lines"]:
            for piece in line["pieces_px"]:
                inside = [p for p in piece if 0 <= p[0] <= 1280 and 0 <= p[1] <= 720]
                back = cal.image_to_ground(np.array(inside).reshape(-1, 2))
                fixed = back[:, 0] if line["axis"] == "x" else back[:, 1]
                np.testing.assert_allclose(fixed, line["value_m"], atol=0.05)
        body = _calibration_body(site_path, CAM)
        assert c.post(f"/api/cameras/{CAM}/calibration/check", json=body).status_code == 401
        res = c.post(f"/api/cameras/{CAM}/calibration/check", json={**body, "spacing_m": 10}, headers=KEY)
        assert res.status_code == 200 and res.json()["spacing_m"] == 10.0
        collinear = json.loads(json.dumps(body))
        for i, p in enumerate(collinear["calibration"]["points"]):
            p["ground_m"] = [float(i), float(i)]
        res = c.post(f"/api/cameras/{CAM}/calibration/check", json=collinear, headers=KEY)
        assert res.status_code == 422 and "collinear" in res.json()["detail"]
        three = {**body, "calibration": {"points": body["calibration"]["points"][:3]}}
        res = c.post(f"/api/cameras/{CAM}/calibration/check", json=three, headers=KEY)
        assert res.status_code == 422 and "calibration" in res.json()["detail"] and "4" in res.json()["detail"]


def test_fit_map_pairs(seeded_sqlite: str, site_path: Path) -> None:
    cal = Calibration.from_camera(load_site(site_path).cameras[0])
    ground = np.array([[2.0, 3.0], [27.0, 2.0], [25.0, 17.0], [4.0, 18.0], [15.0, 10.0]])
    image_px = cal.ground_to_image(ground)
    mpp, origin = 0.05, (100.0, 600.0)
    aerial = np.stack([origin[0] + ground[:, 0] / mpp, origin[1] - ground[:, 1] / mpp], 1)
    pairs = [{"image_px": list(p), "aerial_px": list(a)} for p, a in zip(image_px, aerial, strict=True)]
    lens = _calibration_body(site_path, CAM)["lens"]
    with make_client(seeded_sqlite, site_path) as c:
        body = {"lens": lens, "metres_per_px": mpp, "pairs": pairs, "origin_px": list(origin)}
        assert c.post(f"/api/cameras/{CAM}/calibration/fit-map", json=body).status_code == 401
        res = c.post(f"/api/cameras/{CAM}/calibration/fit-map", json=body, headers=KEY)
        assert res.status_code == 200, res.text
        fit = res.json()
        assert fit["rms_m"] < 0.01 and len(fit["points"]) == 5
        np.testing.assert_allclose([p["ground_m"] for p in fit["calibration"]["points"]], ground, atol=0.01)
        res = c.post(f"/api/cameras/{CAM}/calibration/fit-map", json={**body, "origin_px": None}, headers=KEY)
        assert res.json()["calibration"]["points"][0]["ground_m"] == [0.0, 0.0]
        res = c.post(f"/api/cameras/{CAM}/calibration/fit-map", json={**body, "pairs": pairs[:3]}, headers=KEY)
        assert res.status_code == 422 and "pairs" in res.json()["detail"]
        res = c.post(f"/api/cameras/{CAM}/calibration/fit-map", json={**body, "metres_per_px": 0}, headers=KEY)
        assert res.status_code == 422 and "metres_per_px" in res.json()["detail"]
        line = [{"image_px": [100.0 + i, 100.0 + i], "aerial_px": [10.0 * i, 10.0 * i]} for i in range(4)]
        res = c.post(f"/api/cameras/{CAM}/calibration/fit-map", json={**body, "pairs": line}, headers=KEY)
        assert res.status_code == 422 and "collinear" in res.json()["detail"]


# ---------------------------------------------------------------- calibration save
def test_calibration_save_keeps_comments_and_other_cameras(seeded_sqlite: str, tmp_path: Path) -> None:
    site = example_site_with_two_cameras(tmp_path)
    original = site.read_text()
    body = _calibration_body(site, "fisheye-1")
    with make_client(seeded_sqlite, site) as c:
        assert c.get("/api/cameras/fisheye-1/calibration").json()["lens"]["radius_px"] == 630
        res = c.put("/api/cameras/fisheye-1/calibration", json=body, headers=KEY)
        assert res.status_code == 200, res.text
        assert site.read_text() == original  # an unchanged save changes nothing at all
        for p in body["calibration"]["points"]:
            p["ground_m"] = [round(v * 1.02, 3) for v in p["ground_m"]]
        body["calibration"]["points"] = body["calibration"]["points"][:8]
        body["lens"]["radius_px"] = 628.5
        res = c.put("/api/cameras/fisheye-1/calibration", json=body, headers=KEY)
        assert res.status_code == 200, res.text
        assert res.json()["calibration"]["points"][0]["ground_m"] == [-7.14, 11.22]
    after = site.read_text()
    assert _comments(after) == _comments(original)
    old, new = yaml.safe_load(original), yaml.safe_load(after)
    assert new["cameras"][1] == old["cameras"][1]
    assert {k: v for k, v in new["cameras"][0].items() if k not in ("lens", "calibration")} == \
        {k: v for k, v in old["cameras"][0].items() if k not in ("lens", "calibration")}
    assert new["cameras"][0]["calibration"] == body["calibration"]
    assert new["cameras"][0]["lens"] == body["lens"]
    assert "    lens: {model: equidistant, image_size: [1280, 1280]," in after  # still one line
    assert "        - {image_px: [495.1, 266.7], ground_m: [-7.14, 11.22]}" in after
    assert load_site(site).cameras[0].calibration.points[7].ground_m == (-11.22, 0.0)


@pytest.mark.parametrize(("edit", "field"), [
    (lambda b: b["calibration"]["points"][0].__setitem__("image_px", ["NaN", 1.0]),
     "calibration.points[0].image_px[0]: expected a finite number"),
    (lambda b: b["lens"].__setitem__("fx", "Infinity"), "lens.fx: expected a finite number"),
    (lambda b: b["lens"].__setitem__("fx", -5), "lens.pinhole.fx"),
    (lambda b: b["calibration"].__setitem__("points", b["calibration"]["points"] * 100), "calibration.points"),
    (lambda b: b["calibration"].__setitem__("points", []), "calibration"),
    (lambda b: b.__setitem__("extra", 1), "extra"),
    (lambda b: b["calibration"]["points"][2].__setitem__("image_px", [5000.0, 100.0]), "outside the image"),
])
def test_calibration_save_refuses_bad_bodies(seeded_sqlite: str, site_path: Path, edit: Any, field: str) -> None:
    before = site_path.read_text()
    body = _calibration_body(site_path, CAM)
    edit(body)
    raw = json.dumps(body).replace('"NaN"', "NaN").replace('"Infinity"', "Infinity")
    with make_client(seeded_sqlite, site_path) as c:
        res = c.put(f"/api/cameras/{CAM}/calibration", content=raw, headers={**KEY, "Content-Type": "application/json"})
    assert res.status_code == 422, res.text
    assert field in res.json()["detail"]
    assert site_path.read_text() == before


def test_calibration_save_on_a_broken_site_yaml_is_409_and_needs_the_key(seeded_sqlite: str, site_path: Path) -> None:
    body = _calibration_body(site_path, CAM)
    with make_client(seeded_sqlite, site_path) as c:
        assert c.put(f"/api/cameras/{CAM}/calibration", json=body).status_code == 401
        assert c.put("/api/cameras/nope/calibration", json=body, headers=KEY).status_code == 404
        site_path.write_text(site_path.read_text() + "\n  : [unclosed\n")
        res = c.put(f"/api/cameras/{CAM}/calibration", json=body, headers=KEY)
        assert res.status_code == 409 and "fix it by hand" in res.json()["detail"]
        assert c.get(f"/api/cameras/{CAM}/calibration/check").status_code == 200  # the last good config
    with make_client(seeded_sqlite, None) as c:
        assert c.get(f"/api/cameras/{CAM}/suggestion").status_code == 404
        assert c.put(f"/api/cameras/{CAM}/calibration", json=body, headers=KEY).status_code == 404


def test_a_saved_calibration_that_does_not_fit_is_shown_with_its_problem(seeded_sqlite: str, site_path: Path) -> None:
    data = yaml.safe_load(site_path.read_text())
    for i, p in enumerate(data["cameras"][0]["calibration"]["points"]):
        p["ground_m"] = [float(i), 2.0 * i]  # valid YAML and fields, but on one line
    site_path.write_text(yaml.safe_dump(data, sort_keys=False))
    with make_client(seeded_sqlite, site_path) as c:
        res = c.get(f"/api/cameras/{CAM}/calibration")
        assert res.status_code == 200 and "collinear" in res.json()["problem"] and res.json()["rms_m"] is None
        res = c.get(f"/api/cameras/{CAM}/calibration/check")
        assert res.status_code == 422 and "collinear" in res.json()["detail"]
        body = _calibration_body(site_path, CAM)
        res = c.put(f"/api/cameras/{CAM}/calibration", json=body, headers=KEY)
        assert res.status_code == 422 and "collinear" in res.json()["detail"]


def test_a_deeply_nested_upload_is_422_not_500(seeded_sqlite: str, site_path: Path) -> None:
    with make_client(seeded_sqlite, site_path) as c:
        res = c.post(f"/api/cameras/{CAM}/suggestion", json={"yaml": "[" * 100_000}, headers=KEY)
        assert res.status_code == 422, res.text
        res = c.post(f"/api/cameras/{CAM}/suggestion", json={"yaml": "a: " + "[" * 5000 + "]" * 5000}, headers=KEY)
        assert res.status_code == 422, res.text
