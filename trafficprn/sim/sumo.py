"""Traffic from SUMO: plain-XML network -> netconvert -> routes -> sumo -> trajectories.

The junction centre is the ground origin; x east, y north, metres (SUMO's own frame,
normalisation disabled). SUMO runs as a subprocess with a fixed ``--seed`` and writes
floating-car data (FCD) at the video frame rate; that is deterministic and avoids a
TraCI round trip per step. `simulate(scenario, seconds, fps, seed, workdir)` returns
`Traffic`: the network geometry, the vehicles SUMO was given and their trajectories.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trafficprn.errors import DependencyError, ScenarioError
from trafficprn.plate_syntax import first_template
from trafficprn.sim.scenario import MOVEMENTS, Scenario, movement_target
from trafficprn.types import FloatArray, IntArray

INSTALL_HINT = "SUMO is not installed; install it with: pip install 'trafficprn[sim]'"

# (vType id, class, length_m, width_m, height_m, vClass)
VARIANTS: dict[str, list[tuple[str, float, float, float, str]]] = {
    "car": [("sedan", 4.6, 1.8, 1.45, "passenger"), ("hatch", 4.0, 1.75, 1.5, "passenger"),
            ("suv", 4.8, 1.95, 1.75, "passenger"), ("van", 5.2, 2.0, 2.1, "passenger")],
    "bus": [("bus", 12.0, 2.55, 3.1, "bus")],
    "truck": [("boxtruck", 8.0, 2.45, 3.4, "truck"), ("lorry", 10.0, 2.5, 3.6, "truck")],
    "motorcycle": [("motorcycle", 2.1, 0.8, 1.4, "motorcycle")],
    "bicycle": [("bicycle", 1.8, 0.65, 1.7, "bicycle")],
}
VARIANT_WEIGHTS = {"car": [0.45, 0.25, 0.2, 0.1], "truck": [0.6, 0.4]}


def sumo_binaries() -> dict[str, Path]:
    """Paths of netconvert and sumo from the eclipse-sumo wheel, else from PATH."""
    found: dict[str, Path] = {}
    try:
        import sumo

        bin_dir = Path(sumo.SUMO_HOME) / "bin"
        for name in ("netconvert", "sumo"):
            if (bin_dir / name).is_file():
                found[name] = bin_dir / name
    except ImportError:
        pass
    for name in ("netconvert", "sumo"):
        if name not in found and shutil.which(name):
            found[name] = Path(str(shutil.which(name)))
    if len(found) < 2:
        raise DependencyError(INSTALL_HINT)
    return found


@dataclass(frozen=True)
class Lane:
    """An inbound or outbound lane of a leg in ground m. shape: (K, 2), in driving direction."""

    sumo_id: str
    leg: str
    index: int  # 0 = kerb side
    inbound: bool
    shape_m: FloatArray
    width_m: float

    @property
    def length_m(self) -> float:
        return float(np.linalg.norm(np.diff(self.shape_m, axis=0), axis=1).sum())

    @property
    def name(self) -> str:
        return f"{self.leg}-{self.index + 1}" if self.inbound else f"{self.leg}-out-{self.index + 1}"


@dataclass(frozen=True)
class Network:
    lanes: list[Lane]
    junction_shape_m: FloatArray  # (K, 2) polygon of the junction area
    link_legs: list[tuple[str, str]]  # per TLS link index: (from leg, movement dir)

    def inbound(self, leg: str) -> list[Lane]:
        return sorted((ln for ln in self.lanes if ln.inbound and ln.leg == leg), key=lambda ln: ln.index)

    def outbound(self, leg: str) -> list[Lane]:
        return sorted((ln for ln in self.lanes if not ln.inbound and ln.leg == leg), key=lambda ln: ln.index)


@dataclass(frozen=True)
class Vehicle:
    vid: int
    cls: str
    variant: str
    length_m: float
    width_m: float
    height_m: float
    colour: str
    plate: str | None
    entry_leg: str
    exit_leg: str
    movement: str
    depart_s: float


@dataclass
class Traffic:
    """Trajectories sampled at the frame rate, frame k at time ``t0_s + k / fps``.

    Per frame k, rows ``offsets[k]:offsets[k+1]`` of the flat arrays hold the vehicles
    present: vid, x_m/y_m (vehicle *centre*), heading_rad (0 = east, counter-clockwise),
    speed_mps, lane index into `lane_ids` (-1 inside the junction), lane_pos_m (front bumper
    distance along the lane).
    """

    network: Network
    vehicles: dict[int, Vehicle]
    fps: float
    t0_s: float
    n_frames: int
    offsets: IntArray
    vid: IntArray
    xy_m: FloatArray
    heading_rad: FloatArray
    speed_mps: FloatArray
    lane: IntArray
    lane_pos_m: FloatArray
    lane_ids: list[str] = field(default_factory=list)

    def frame(self, k: int) -> slice:
        return slice(int(self.offsets[k]), int(self.offsets[k + 1]))


def _leg_xy(name: str, dist_m: float) -> tuple[float, float]:
    return {"N": (0.0, dist_m), "E": (dist_m, 0.0), "S": (0.0, -dist_m), "W": (-dist_m, 0.0)}[name]


def write_plain_network(sc: Scenario, out: Path) -> dict[str, Path]:
    """Write nodes, edges and connections as SUMO plain XML."""
    nodes = ET.Element("nodes")
    ET.SubElement(nodes, "node", id="C", x="0", y="0", type="traffic_light", tl="C")
    edges = ET.Element("edges")
    cons = ET.Element("connections")
    v = f"{sc.speed_limit_kmh / 3.6:.3f}"
    w = f"{sc.lane_width_m:.2f}"
    for leg in sc.legs:
        x, y = _leg_xy(leg.name, leg.length_m)
        ET.SubElement(nodes, "node", id=leg.name, x=f"{x:g}", y=f"{y:g}", type="priority")
        ET.SubElement(edges, "edge", id=f"{leg.name}_in", attrib={"from": leg.name, "to": "C"},
                      numLanes=str(len(leg.lanes_in)), speed=v, width=w)
        ET.SubElement(edges, "edge", id=f"{leg.name}_out", attrib={"from": "C", "to": leg.name},
                      numLanes=str(leg.lanes_out), speed=v, width=w)
    names = [leg.name for leg in sc.legs]
    for leg in sc.legs:
        for i, lane in enumerate(leg.lanes_in):
            for m in MOVEMENTS:
                target = movement_target(leg.name, m)
                if m not in lane or target not in names:
                    continue
                n_out = sc.leg(target).lanes_out
                to_lane = {"R": 0, "L": n_out - 1, "U": n_out - 1}.get(m, min(i, n_out - 1))
                if m == "T":
                    # through lanes map onto outbound lanes in order from the kerb
                    t_lanes = [j for j, ln in enumerate(leg.lanes_in) if "T" in ln]
                    to_lane = min(t_lanes.index(i), n_out - 1)
                ET.SubElement(cons, "connection", attrib={"from": f"{leg.name}_in", "to": f"{target}_out",
                              "fromLane": str(i), "toLane": str(to_lane)})
    paths = {"nod": out / "junction.nod.xml", "edg": out / "junction.edg.xml", "con": out / "junction.con.xml"}
    for key, root in (("nod", nodes), ("edg", edges), ("con", cons)):
        ET.ElementTree(root).write(paths[key], encoding="unicode")
    return paths


def build_network(sc: Scenario, out: Path, bins: dict[str, Path]) -> Path:
    plain = write_plain_network(sc, out)
    net = out / "junction.net.xml"
    cmd = [str(bins["netconvert"]), "-n", str(plain["nod"]), "-e", str(plain["edg"]), "-x", str(plain["con"]),
           "-o", str(net), "--offset.disable-normalization", "true", "--no-turnarounds", "true",
           "--junctions.corner-detail", "6", "--default.junctions.radius", "6", "--no-warnings", "true"]
    _run(cmd, "netconvert")
    return net


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ScenarioError(f"{what} failed: {proc.stderr.strip()[-500:]}", field="scenario")


def _shape(text: str) -> FloatArray:
    return np.array([[float(c) for c in p.split(",")[:2]] for p in text.split()], dtype=np.float64)


def read_network(net: Path) -> Network:
    root = ET.parse(net).getroot()
    lanes: list[Lane] = []
    junction = np.zeros((0, 2))
    for edge in root.iter("edge"):
        eid = edge.get("id", "")
        if edge.get("function") == "internal" or "_" not in eid:
            continue
        leg, kind = eid.split("_")
        for lane in edge.iter("lane"):
            lanes.append(Lane(sumo_id=lane.get("id", ""), leg=leg, index=int(lane.get("index", "0")),
                              inbound=kind == "in", shape_m=_shape(lane.get("shape", "")),
                              width_m=float(lane.get("width", "3.2"))))
    for j in root.iter("junction"):
        if j.get("id") == "C":
            junction = _shape(j.get("shape", ""))
    links: dict[int, tuple[str, str]] = {}
    for c in root.iter("connection"):
        if c.get("tl") == "C":
            links[int(c.get("linkIndex", "0"))] = (c.get("from", "").split("_")[0], c.get("dir", "s"))
    return Network(lanes=lanes, junction_shape_m=junction, link_legs=[links[i] for i in sorted(links)])


def write_signal_program(sc: Scenario, network: Network, path: Path) -> None:
    """The scenario's fixed-time plan as a SUMO tlLogic (lefts and U-turns permissive)."""
    add = ET.Element("additional")
    tl = ET.SubElement(add, "tlLogic", id="C", type="static", programID="scenario", offset="0")
    for phase in sc.signal.phases:
        green = "".join(
            ("G" if d in ("s", "r", "R") else "g") if leg in phase.legs else "r" for leg, d in network.link_legs
        )
        yellow = "".join("y" if c in "Gg" else "r" for c in green)
        ET.SubElement(tl, "phase", duration=f"{phase.green_s:g}", state=green)
        if sc.signal.yellow_s > 0:
            ET.SubElement(tl, "phase", duration=f"{sc.signal.yellow_s:g}", state=yellow)
        if sc.signal.all_red_s > 0:
            ET.SubElement(tl, "phase", duration=f"{sc.signal.all_red_s:g}", state="r" * len(green))
    ET.ElementTree(add).write(path, encoding="unicode")


def signal_is_green(sc: Scenario, leg: str, t_s: FloatArray) -> np.ndarray:
    """(N,) bool: is `leg` green (not yellow/red) at simulation times t_s?"""
    t = np.mod(np.asarray(t_s, dtype=np.float64), sc.signal.cycle_s)
    out = np.zeros(t.shape, dtype=bool)
    start = 0.0
    for phase in sc.signal.phases:
        if leg in phase.legs:
            out |= (t >= start) & (t < start + phase.green_s)
        start += phase.green_s + sc.signal.yellow_s + sc.signal.all_red_s
    return out


def make_plate(fmt: str | list[str], rng: np.random.Generator) -> str:
    """A random plate of the spec's first template (`plate_syntax`: a region or `auto` renders
    its first pattern), e.g. 'ABC-1234'."""
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    pattern = first_template(fmt)

    def slot(c: str) -> str:
        if c == "L" or (c == "*" and rng.random() < 0.5):
            return letters[rng.integers(len(letters))]
        return str(rng.integers(10)) if c in ("D", "*") else c

    return "".join(slot(c) for c in pattern)


def generate_vehicles(sc: Scenario, end_s: float, rng: np.random.Generator) -> list[Vehicle]:
    """Poisson arrivals per leg with movement, class, variant, colour and plate."""
    classes = list(sc.vehicle_types)
    shares = np.array([sc.vehicle_types[c].share for c in classes])
    shares = shares / shares.sum()
    colours = list(sc.colours)
    cw = np.array([sc.colours[c] for c in colours])
    cw = cw / cw.sum()
    names = [leg.name for leg in sc.legs]
    raw: list[tuple[float, str, str]] = []
    for leg in sc.legs:
        rate = leg.demand_vph / 3600.0
        if rate <= 0:
            continue
        t = float(rng.exponential(1 / rate))
        moves = [m for m in MOVEMENTS if leg.turns.share(m) > 0 and movement_target(leg.name, m) in names]
        p = np.array([leg.turns.share(m) for m in moves])
        while t < end_s:
            raw.append((t, leg.name, moves[int(rng.choice(len(moves), p=p / p.sum()))]))
            t += float(rng.exponential(1 / rate))
    raw.sort()
    out: list[Vehicle] = []
    for vid, (t, leg_name, move) in enumerate(raw):
        cls = classes[int(rng.choice(len(classes), p=shares))]
        variants = VARIANTS[cls]
        w = np.array(VARIANT_WEIGHTS.get(cls, [1.0] * len(variants)))
        variant, length, width, height, _ = variants[int(rng.choice(len(variants), p=w / w.sum()))]
        colour = colours[int(rng.choice(len(colours), p=cw))]
        if cls == "bus":
            colour = str(rng.choice(["white", "yellow", "red", "blue", "green", "silver"]))
        plate = None if cls == "bicycle" else make_plate(sc.plate_format, rng)
        out.append(Vehicle(vid=vid, cls=cls, variant=variant, length_m=length, width_m=width, height_m=height,
                           colour=colour, plate=plate, entry_leg=leg_name, exit_leg=movement_target(leg_name, move),
                           movement=move, depart_s=round(t, 1)))
    return out


def write_routes(sc: Scenario, vehicles: list[Vehicle], path: Path) -> None:
    root = ET.Element("routes")
    for cls, variants in VARIANTS.items():
        vt = sc.vehicle_types.get(cls)  # type: ignore[call-overload]
        if vt is None:
            continue
        for variant, length, width, height, vclass in variants:
            ET.SubElement(root, "vType", id=variant, vClass=vclass, length=f"{length}", width=f"{width}",
                          height=f"{height}", maxSpeed=f"{vt.max_speed_kmh / 3.6:.3f}", minGap="2.0",
                          speedFactor=f"normc(1,{vt.speed_sd},0.6,1.4)", sigma="0.3")
    routes = sorted({(v.entry_leg, v.exit_leg) for v in vehicles})
    for a, b in routes:
        ET.SubElement(root, "route", id=f"{a}{b}", edges=f"{a}_in {b}_out")
    for v in vehicles:
        ET.SubElement(root, "vehicle", id=str(v.vid), type=v.variant, route=f"{v.entry_leg}{v.exit_leg}",
                      depart=f"{v.depart_s:.1f}", departLane="best", departSpeed="max")
    ET.ElementTree(root).write(path, encoding="unicode")


def simulate(sc: Scenario, seconds: float, fps: float, seed: int, workdir: Path) -> Traffic:
    """Run SUMO for warm-up + `seconds` and sample trajectories at `fps`."""
    bins = sumo_binaries()
    workdir.mkdir(parents=True, exist_ok=True)
    net_path = build_network(sc, workdir, bins)
    network = read_network(net_path)
    tls = workdir / "signal.add.xml"
    write_signal_program(sc, network, tls)
    rng = np.random.default_rng(seed)
    end_s = sc.warmup_s + seconds
    vehicles = generate_vehicles(sc, end_s, rng)
    routes = workdir / "routes.rou.xml"
    write_routes(sc, vehicles, routes)
    fcd = workdir / "fcd.xml"
    step = 1.0 / fps
    _run([str(bins["sumo"]), "-n", str(net_path), "-r", str(routes), "-a", str(tls),
          "--step-length", f"{step:.6f}", "--begin", "0", "--end", f"{end_s + step:.3f}", "--seed", str(seed),
          "--fcd-output", str(fcd), "--fcd-output.attributes", "x,y,angle,speed,lane,pos",
          "--time-to-teleport", "300", "--no-step-log", "true", "--no-warnings", "true",
          "--default.action-step-length", f"{step:.6f}"], "sumo")
    n_frames = int(round(seconds * fps))
    return _read_fcd(fcd, network, {v.vid: v for v in vehicles}, fps, sc.warmup_s, n_frames)


def _read_fcd(path: Path, network: Network, vehicles: dict[int, Vehicle], fps: float, t0_s: float,
              n_frames: int) -> Traffic:
    lane_ids = [ln.sumo_id for ln in network.lanes]
    lane_index = {lid: i for i, lid in enumerate(lane_ids)}
    cols: dict[str, list[float]] = {k: [] for k in ("vid", "x", "y", "a", "v", "lane", "pos")}
    counts = np.zeros(n_frames, dtype=np.int64)
    for _, elem in ET.iterparse(path, events=("end",)):
        if elem.tag != "timestep":
            continue
        k = int(round((float(elem.get("time", "0")) - t0_s) * fps))
        if 0 <= k < n_frames:
            for veh in elem:
                vid = int(veh.get("id", "0"))
                v = vehicles[vid]
                ang = math.radians(float(veh.get("angle", "0")))  # SUMO: 0 = north, clockwise
                hx, hy = math.sin(ang), math.cos(ang)
                cols["vid"].append(vid)
                cols["x"].append(float(veh.get("x", "0")) - hx * v.length_m / 2)
                cols["y"].append(float(veh.get("y", "0")) - hy * v.length_m / 2)
                cols["a"].append(math.atan2(hy, hx))
                cols["v"].append(float(veh.get("speed", "0")))
                cols["lane"].append(lane_index.get(veh.get("lane", ""), -1))
                cols["pos"].append(float(veh.get("pos", "0")))
            counts[k] = len(elem)
        elem.clear()
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return Traffic(
        network=network, vehicles=vehicles, fps=fps, t0_s=t0_s, n_frames=n_frames, offsets=offsets,
        vid=np.array(cols["vid"], dtype=np.int64), xy_m=np.stack([cols["x"], cols["y"]], axis=1).reshape(-1, 2),
        heading_rad=np.array(cols["a"]), speed_mps=np.array(cols["v"]), lane=np.array(cols["lane"], dtype=np.int64),
        lane_pos_m=np.array(cols["pos"]), lane_ids=lane_ids,
    )
