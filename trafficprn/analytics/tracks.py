"""Per-track traffic analytics of one camera: ground trajectory (box anchor -> ground m via
the calibration, see `anchor`), zones, class votes, speed, queues. Bounded state: a track's state lives while the tracker holds the track, then
becomes a `VehiclePassage` (or, when it ended before reaching an exit zone, waits a few
seconds to be joined to the track that re-acquired the same vehicle).

Counting once: only a track with an entry leg *and* an exit leg is a passage. A vehicle
that loses its track (occlusion, long stop) leaves a fragment with an entry and no exit;
the fragment is joined to the new track that starts near where it was lost, so the
vehicle counts once, with its first entry leg. Box jitter across a zone edge does not
matter: the entry leg is the first entry zone, the exit leg the last exit zone, and the
passage time the last time the vehicle left its entry zone.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trafficprn.analytics.anchor import GroundAnchor
from trafficprn.analytics.queue import LENGTH_BY_CLASS_M, Lane, build_lanes, queue_from_stop_line
from trafficprn.analytics.smooth import GroundPath, SmootherParams, anchor_covariance_m2, smooth_path
from trafficprn.analytics.speed import (
    MPS_TO_KMH,
    SpeedTrace,
    fit_velocity_mps,
    passage_speeds,
    summarise_speeds,
    window_position_m,
)
from trafficprn.analytics.vote import ClassVote
from trafficprn.analytics.zones import GroundMapper, LabelMap, Zones
from trafficprn.config import CameraConfig, SiteConfig
from trafficprn.errors import CalibrationError
from trafficprn.events import Event, QueueSample, VehiclePassage
from trafficprn.types import Detections, FloatArray, IntArray


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


@dataclass(frozen=True)
class AnalyticsParams:
    """Tuning of the per-track analytics (times in s, distances in m, speeds in km/h)."""

    speed_window_s: float = 1.0  # positions fitted for one speed estimate (it belongs to the window's middle)
    speed_every_s: float = 0.5  # how often a track's speed is estimated
    min_speed_span_s: float = 0.5  # a window must span this much time to give a speed
    max_plausible_kmh: float = 160.0  # above this a passage's speed is flagged
    min_track_s: float = 0.5  # shorter tracks are no passages
    stitch_s: float = 3.0  # a fragment waits this long for the track that re-acquires it
    stitch_m: float = 4.0  # how far from the fragment's predicted position a new track may start
    hold_s: float = 1.0  # a queued vehicle unseen this long still counts (brief occlusion)
    # Opt-in (0 = off): count vehicles not seen in one of their zones by inferring the leg.
    # Off by default: on the 30-minute sim scene it added as many wrong counts as right ones.
    infer_entry_m: float = 0.0  # e.g. 25: a track first seen past the entry zones gets the leg behind it
    infer_after_s: float = 5.0  # ... unless it was there when the stream started
    infer_exit_m: float = 0.0  # e.g. 20: a fragment lost this near an exit zone, heading out through it
    history: int = 64  # positions kept per track
    anchor: str = "down"  # "down": calibrated ground anchor (see analytics.anchor); "bottom": box bottom-centre
    max_speed_samples: int = 2048  # speed estimates kept per track (decimated beyond)
    # The through speed from the whole trajectory smoothed offline (analytics.smooth); off:
    # from the windowed trace. The anchor's image error is taken as anchor_sd_px plus
    # anchor_sd_share of the box size (sqrt of its area), mapped to the ground where it lies.
    smooth: bool = True
    smoother: SmootherParams = field(default_factory=SmootherParams)
    anchor_sd_px: float = 1.0
    anchor_sd_share: float = 0.05
    max_path_samples: int = 4096  # raw ground positions kept per track (decimated beyond)


@dataclass
class TrackState:
    """What analytics keep about one live track."""

    track_id: int
    first_ts: float
    last_ts: float
    entry: int = -1  # first entry leg (index), -1 none yet
    exit: int = -1  # last exit leg after the entry
    in_entry: bool = False
    passage_ts: float | None = None  # last time it left its entry zone
    last_in_entry_ts: float | None = None
    ts: deque[float] = field(default_factory=deque)
    xy_m: deque[tuple[float, float]] = field(default_factory=deque)
    in_area: deque[bool] = field(default_factory=deque)
    speeds_kmh: list[float] = field(default_factory=list)
    trace: SpeedTrace = field(default_factory=SpeedTrace.empty)  # every estimate, in the area or not
    path: GroundPath = field(default_factory=GroundPath.empty)  # every ground position, for smoothing
    entry_ts: float | None = None  # when it reached its entry zone
    exit_ts: float | None = None  # when it reached its (last) exit zone
    speed_kmh: float | None = None
    next_speed_ts: float = 0.0
    slow_since: float | None = None
    votes: ClassVote = field(default_factory=ClassVote)
    observations: int = 0
    lane: int = -1
    ground_m: FloatArray | None = None
    velocity_mps: FloatArray | None = None
    first_ground_m: FloatArray | None = None
    first_velocity_mps: FloatArray | None = None
    merged_ids: list[int] = field(default_factory=list)
    entry_inferred: bool = False
    exit_inferred: bool = False
    first_anchor_px: FloatArray | None = None
    min_centre_m: float = np.inf  # closest it came to the junction centre
    last_anchor_px: FloatArray | None = None
    continuation: bool = False  # started where a counted vehicle's track was just lost

    def absorb(self, frag: TrackState) -> None:
        """Take over an earlier fragment of the same vehicle."""
        self.first_ts = min(self.first_ts, frag.first_ts)
        if frag.entry >= 0:
            if self.entry < 0 or self.entry == frag.entry:
                if self.entry < 0 and not self.in_entry:
                    self.passage_ts = frag.passage_ts if frag.passage_ts is not None else frag.last_ts
                self.entry = frag.entry
            self.last_in_entry_ts = self.last_in_entry_ts or frag.last_in_entry_ts
            if frag.entry == self.entry:
                self.entry_ts = frag.entry_ts
        self.votes.merge(frag.votes)
        self.min_centre_m = min(self.min_centre_m, frag.min_centre_m)
        self.speeds_kmh = frag.speeds_kmh + self.speeds_kmh
        self.trace = frag.trace.joined(self.trace)
        self.path = frag.path.joined(self.path)
        self.observations += frag.observations
        self.merged_ids = [*frag.merged_ids, frag.track_id, *self.merged_ids]


class TrafficAnalytics:
    """Analytics of one camera. Call `update(ts, tracks, live_ids)` once per frame with the
    tracker's reported tracks (class_id = `VehicleClass` values) and the ids the tracker
    still holds; it returns the events of that frame. `finish(ts)` ends every track."""

    def __init__(
        self,
        site: SiteConfig,
        camera: CameraConfig,
        ground: GroundMapper,
        *,
        calibrated_area_px: FloatArray | None = None,
        params: AnalyticsParams | None = None,
    ):
        self.camera = camera
        self.params = params or AnalyticsParams()
        self.ground = ground
        self.zones = Zones(camera, ground, site.site.driving_side)
        self.lanes: list[Lane] = build_lanes(camera, ground)
        self.queue_cfg = camera.queue
        self.area_px = calibrated_area_px
        self.anchor = GroundAnchor(ground, self.params.anchor)
        size = camera.lens.image_size
        self._lane_map = LabelMap([lane.polygon_px for lane in self.lanes], size) if self.lanes else None
        self._area_map = LabelMap([calibrated_area_px], size) if calibrated_area_px is not None else None
        self.states: dict[int, TrackState] = {}
        self.fragments: list[TrackState] = []
        self.counted: list[TrackState] = []
        self.start_ts: float | None = None  # first frame seen  # recently counted tracks, for spotting their continuations
        self.next_queue_ts: float | None = None
        self.stats = {"passages": 0, "fragments_joined": 0, "entry_inferred": 0, "exit_inferred": 0,
                      "dropped_incomplete": 0, "dropped_short": 0}

    # ------------------------------------------------------------------ per frame
    def update(self, ts: float, tracks: Detections, live_ids: IntArray) -> list[Event]:
        """Observe one frame. tracks: reported tracks (image px, with track_id)."""
        events: list[Event] = []
        if self.start_ts is None:
            self.start_ts = ts
        if len(tracks) and tracks.track_id is not None:
            self._observe(ts, tracks)
        live = set(live_ids.tolist())
        for tid in [t for t in self.states if t not in live]:
            events.extend(self._end(self.states.pop(tid)))
        expired = [f for f in self.fragments if ts - f.last_ts > self.params.stitch_s]
        if expired:
            self.fragments = [f for f in self.fragments if ts - f.last_ts <= self.params.stitch_s]
            for frag in expired:
                events.extend(self._expire(frag))
        self.counted = [c for c in self.counted if ts - c.last_ts <= self.params.stitch_s]
        if self.lanes:
            events.extend(self._sample_queues(ts))
        return events

    def finish(self, ts: float) -> list[Event]:
        """End every live track (end of a video, shutdown) and emit their passages."""
        events: list[Event] = []
        for tid in list(self.states):
            events.extend(self._end(self.states.pop(tid), allow_fragment=False))
        for frag in self.fragments:  # still waiting: not seen leaving, so not counted
            events.extend(self._end(frag, allow_fragment=False))
        self.fragments.clear()
        return events

    def _observe(self, ts: float, tracks: Detections) -> None:
        if tracks.track_id is None:
            return
        anchor_px = self.anchor(tracks.xyxy)
        try:
            ground_m = self.ground.image_to_ground(anchor_px)
        except CalibrationError:
            ground_m = np.full((len(tracks), 2), np.nan)
        usable = np.asarray(np.isfinite(ground_m).all(axis=1), dtype=bool)
        p = self.params
        cov_m2 = (anchor_covariance_m2(self.ground, anchor_px, tracks.xyxy, p.anchor_sd_px, p.anchor_sd_share)
                  if p.smooth else None)
        in_area = usable if self._area_map is None else usable & (self._area_map.lookup(anchor_px) >= 0)
        entry = self.zones.entry_of(anchor_px)
        exit_ = self.zones.exit_of(anchor_px)
        lane = self._lane_map.lookup(anchor_px) if self._lane_map is not None else np.full(len(tracks), -1)
        for i, tid in enumerate(tracks.track_id.tolist()):
            st = self.states.get(tid)
            if st is None:
                st = self.states[tid] = TrackState(tid, ts, ts, next_speed_ts=ts, first_anchor_px=anchor_px[i])
                if np.isfinite(ground_m[i]).all():
                    self._join_fragment(st, ground_m[i], ts)
            st.last_ts = ts
            st.observations += 1
            st.votes.add(int(tracks.class_id[i]), float(tracks.confidence[i]))
            st.lane = int(lane[i])
            a = anchor_px[i]
            crossed = -1
            if exit_[i] < 0 and st.last_anchor_px is not None and st.entry >= 0:
                jump = a - st.last_anchor_px
                if jump[0] * jump[0] + jump[1] * jump[1] > 64.0:  # moved > 8 px since its last sighting
                    crossed = self.zones.exit_along(st.last_anchor_px, a)
            self._zones(st, int(entry[i]), int(exit_[i]) if exit_[i] >= 0 else crossed, ts)
            if st.first_anchor_px is None:
                st.first_anchor_px = a
            st.last_anchor_px = a
            if usable[i]:
                xy = ground_m[i]
                st.ground_m = xy
                st.min_centre_m = min(st.min_centre_m, float(np.hypot(*(xy - self.zones.centre_m))))
                if st.first_ground_m is None:
                    st.first_ground_m = xy
                st.ts.append(ts)
                st.xy_m.append((float(xy[0]), float(xy[1])))
                st.in_area.append(bool(in_area[i]))
                if cov_m2 is not None and np.isfinite(cov_m2[i]).all():
                    st.path.add(ts, xy, cov_m2[i], p.max_path_samples)
                if len(st.ts) > p.history:
                    st.ts.popleft()
                    st.xy_m.popleft()
                    st.in_area.popleft()
                if ts >= st.next_speed_ts:
                    self._estimate_speed(st, ts)

    def _zones(self, st: TrackState, entry: int, exit_: int, ts: float) -> None:
        if entry >= 0 and st.entry < 0:
            st.entry = entry
            st.entry_ts = ts
            st.exit = -1  # exit zones seen before the entry do not count
            st.exit_ts = None
        if st.entry >= 0 and entry == st.entry:
            st.in_entry = True
            st.passage_ts = None
            st.last_in_entry_ts = ts
        elif st.in_entry:
            st.in_entry = False
            st.passage_ts = ts
        if exit_ >= 0:
            if exit_ != st.exit:
                st.exit_ts = ts
            st.exit = exit_

    def _estimate_speed(self, st: TrackState, ts: float) -> None:
        """Speed from the last speed_window_s of positions. The fit is the speed at the
        window's middle, so it counts towards the vehicle's summary when the vehicle was in
        the calibrated area at that middle time (outside it the ground is extrapolated);
        an accelerating vehicle is then not under-estimated by the window's lag."""
        p = self.params
        st.next_speed_ts = ts + p.speed_every_s
        t = np.fromiter(st.ts, dtype=np.float64, count=len(st.ts))
        recent = t >= ts - p.speed_window_s
        if recent.sum() < 4 or ts - t[recent][0] < p.min_speed_span_s:
            return
        xy = np.array(st.xy_m, dtype=np.float64)[recent]
        v = fit_velocity_mps(t[recent], xy)
        if v is None:
            return
        st.velocity_mps = v
        if st.first_velocity_mps is None:
            st.first_velocity_mps = v
        speed = float(np.hypot(v[0], v[1]) * MPS_TO_KMH)
        st.speed_kmh = speed
        t_win = t[recent]
        t_mid = (t_win[0] + t_win[-1]) / 2.0
        st.trace.add(t_mid, window_position_m(t_win, xy, v, t_mid), speed, p.max_speed_samples)
        mid = int(np.searchsorted(t_win, t_mid))
        if st.in_area[int(np.flatnonzero(recent)[0]) + min(mid, len(t_win) - 1)]:
            st.speeds_kmh.append(speed)
            if len(st.speeds_kmh) > p.max_speed_samples:
                st.speeds_kmh = st.speeds_kmh[::2]
        if speed < self.queue_cfg.stopped_kmh:
            if st.slow_since is None:
                st.slow_since = ts
        else:
            st.slow_since = None

    # ------------------------------------------------------------------ fragments
    def _join_fragment(self, st: TrackState, ground_m: FloatArray, ts: float) -> None:
        """A new track takes over the closest waiting fragment that ended near here."""
        best, best_d = None, np.inf
        for frag in self.fragments:
            d = self._fragment_distance(frag, ground_m, ts)
            if d < best_d:
                best, best_d = frag, d
        if best is not None:
            self.fragments.remove(best)
            self._absorb(st, best)
            return
        st.continuation = any(np.isfinite(self._fragment_distance(c, ground_m, ts)) for c in self.counted)

    def _fragment_distance(self, frag: TrackState, ground_m: FloatArray, ts: float) -> float:
        gap = ts - frag.last_ts
        if frag.ground_m is None or not 0 <= gap <= self.params.stitch_s:
            return np.inf
        # distance to the stretch it could have covered since: from where it was lost to
        # where it would be at constant velocity (turning vehicles land in between)
        step = (frag.velocity_mps if frag.velocity_mps is not None else np.zeros(2)) * gap
        rel = ground_m - frag.ground_m
        norm2 = float(step @ step)
        along = float(np.clip(rel @ step / norm2, 0.0, 1.0)) if norm2 > 1e-12 else 0.0
        d = float(np.hypot(*(rel - along * step)))
        allowed = self.params.stitch_m + 0.75 * float(np.sqrt(norm2))
        return d if d <= allowed else np.inf

    def _adopt_by_live_track(self, frag: TrackState) -> bool:
        """At a fragment's end, the re-acquiring track may already be live: join it."""
        best, best_d = None, np.inf
        for st in self.states.values():
            if st.first_ts < frag.last_ts or st.entry not in (-1, frag.entry) or not st.ts:
                continue
            first = np.array(st.xy_m[0])
            d = self._fragment_distance(frag, first, st.ts[0])
            if d < best_d:
                best, best_d = st, d
        if best is None:
            return False
        self._absorb(best, frag)
        return True

    def _absorb(self, st: TrackState, frag: TrackState) -> None:
        """st takes over frag; an exit zone crossed unseen between them counts."""
        st.absorb(frag)
        self.stats["fragments_joined"] += 1
        if st.exit < 0 and frag.last_anchor_px is not None and st.first_anchor_px is not None:
            st.exit = self.zones.exit_along(frag.last_anchor_px, st.first_anchor_px)
            st.exit_ts = (st.ts[0] if st.ts else st.last_ts) if st.exit >= 0 else None  # reached unseen, by then

    # ------------------------------------------------------------------ ends
    def _end(self, st: TrackState, allow_fragment: bool = True, infer_exit: bool = False) -> list[Event]:
        if st.entry >= 0 and st.exit < 0 and allow_fragment:
            if not self._adopt_by_live_track(st):
                self.fragments.append(st)
            return []
        if st.entry < 0 and st.exit >= 0 and not st.continuation:
            self._infer_entry(st)
        if st.entry >= 0 and st.exit < 0 and infer_exit:
            self._infer_exit(st)
        if st.entry < 0 or st.exit < 0:
            self.stats["dropped_incomplete"] += 1
            return []
        if st.entry == st.exit and st.min_centre_m > self.zones.u_turn_reach_m:
            # in and out of one leg without turning round in the junction: an identity
            # switch between neighbouring inbound and outbound vehicles, not a U-turn
            self.stats["dropped_incomplete"] += 1
            return []
        if st.last_ts - st.first_ts < self.params.min_track_s:
            self.stats["dropped_short"] += 1
            return []
        self.stats["passages"] += 1
        self._mark_continuations(st)
        self.counted.append(st)
        return [self._passage(st)]

    def _mark_continuations(self, done: TrackState) -> None:
        """Live tracks that began where a counted vehicle was lost continue that vehicle:
        they must not be counted again through an inferred entry."""
        for st in self.states.values():
            if st.first_ts >= done.last_ts and st.entry < 0 and st.ts:
                first = np.array(st.xy_m[0])
                if np.isfinite(self._fragment_distance(done, first, st.ts[0])):
                    st.continuation = True

    def _expire(self, frag: TrackState) -> list[Event]:
        """A fragment no track took over: count it if it was heading out through an exit zone."""
        return self._end(frag, allow_fragment=False, infer_exit=True)

    def _infer_exit(self, st: TrackState) -> None:
        """A vehicle lost while crossing its exit zone (fast and small, say a motorcycle whose
        new track was still unconfirmed there): the exit leg from its last position and heading."""
        if self.params.infer_exit_m <= 0 or st.ground_m is None:
            return
        velocity = st.velocity_mps
        if velocity is None and len(st.ts) >= 2:
            velocity = fit_velocity_mps(np.array(st.ts), np.array(st.xy_m))
        if velocity is None:
            return
        leg = self.zones.exit_ahead(st.ground_m, velocity, self.params.infer_exit_m)
        if leg >= 0 and (leg != st.entry or st.passage_ts is not None):
            st.exit = leg
            st.exit_inferred = True
            self.stats["exit_inferred"] += 1

    def _infer_entry(self, st: TrackState) -> None:
        """A vehicle hidden while in its entry zone (occluded in a queue, behind a bus) has a
        track that starts in the junction: take the entry leg from where the track started
        and where it was heading; the passage time is then its first sighting."""
        if self.params.infer_entry_m <= 0 or st.first_ground_m is None or st.first_velocity_mps is None:
            return
        if self.start_ts is None or st.first_ts - self.start_ts < self.params.infer_after_s:
            return  # already in the junction when we started watching: it passed before
        leg = self.zones.entry_behind(st.first_ground_m, st.first_velocity_mps, self.params.infer_entry_m)
        if leg >= 0 and leg != st.exit:
            st.entry = leg
            st.passage_ts = st.first_ts
            st.entry_inferred = True
            self.stats["entry_inferred"] += 1

    def _passage(self, st: TrackState) -> VehiclePassage:
        cls, conf = st.votes.result()
        speed = summarise_speeds(np.array(st.speeds_kmh), max_plausible_kmh=self.params.max_plausible_kmh)
        passage_ts = st.passage_ts if st.passage_ts is not None else (st.last_in_entry_ts or st.first_ts)
        exit_ts = st.exit_ts if st.exit_ts is not None and st.exit_ts > passage_ts else None
        engineer = passage_speeds(self._trace_to_end(st), None if st.entry_inferred else st.entry_ts, passage_ts,
                                  None if st.exit_inferred else exit_ts, spacing_s=self.params.speed_every_s,
                                  motion=self._smoothed(st))
        extras: dict[str, Any] = {"merged_track_ids": st.merged_ids} if st.merged_ids else {}
        if st.entry_inferred:
            extras["entry_inferred"] = True
        if st.exit_inferred:
            extras["exit_inferred"] = True
        return VehiclePassage(
            camera=self.camera.name,
            track_id=st.track_id,
            passage_ts=passage_ts,
            first_seen_ts=st.first_ts,
            last_seen_ts=st.last_ts,
            vehicle_class=cls.label,
            class_confidence=conf,
            entry_leg=self.zones.names[st.entry],
            exit_leg=self.zones.names[st.exit],
            movement=self.zones.movement(st.entry, st.exit),
            speed_median_kmh=speed.median_kmh,
            speed_max_kmh=speed.max_kmh,
            speed_flagged=speed.flagged,
            approach_speed_kmh=_round(engineer.approach_kmh, 2),  # 0.01 km/h: the speed histogram
            through_speed_kmh=_round(engineer.through_kmh, 2),  # groups by distinct value
            stopped_s=_round(engineer.stopped_s, 1),
            stops=engineer.stops,
            extras=extras,
        )

    def _smoothed(self, st: TrackState) -> SpeedTrace | None:
        """The track's whole ground path smoothed (analytics.smooth) as a trace; None when off."""
        if not self.params.smooth or len(st.path.t) < 2:
            return None
        s = smooth_path(st.path, self.params.smoother)
        return SpeedTrace(s.t.tolist(), s.xy_m[:, 0].tolist(), s.xy_m[:, 1].tolist(), s.speed_kmh.tolist())

    @staticmethod
    def _trace_to_end(st: TrackState) -> SpeedTrace:
        """The speed trace up to the last sighting: estimates belong to their window's middle,
        so the last one lags; the last ground position closes the path (at the last speed)."""
        if not st.trace.t or not st.ts or st.ts[-1] <= st.trace.t[-1] or st.speed_kmh is None:
            return st.trace
        x, y = st.xy_m[-1]
        return st.trace.joined(SpeedTrace([st.ts[-1]], [x], [y], [st.speed_kmh]))

    # ------------------------------------------------------------------ queues
    def _sample_queues(self, ts: float) -> list[Event]:
        if self.next_queue_ts is None:
            self.next_queue_ts = float(np.floor(ts)) + 1.0
            return []
        if ts < self.next_queue_ts:
            return []
        self.next_queue_ts = float(np.floor(ts)) + 1.0
        return list(self.queue_samples(ts))

    def queue_samples(self, ts: float) -> list[QueueSample]:
        """One QueueSample per lane at `ts` from the live tracks' last positions."""
        q = self.queue_cfg
        by_lane: list[list[TrackState]] = [[] for _ in self.lanes]
        for st in self.states.values():
            if st.lane >= 0 and st.ground_m is not None and ts - st.last_ts <= self.params.hold_s:
                by_lane[st.lane].append(st)
        out = []
        for lane, members in zip(self.lanes, by_lane, strict=True):
            length_m, n = 0.0, 0
            if members:
                ground = np.array([m.ground_m for m in members])
                stopped = np.array([m.slow_since is not None and ts - m.slow_since >= q.dwell_s for m in members])
                lengths = LENGTH_BY_CLASS_M[[int(m.votes.result()[0]) for m in members]]
                length_m, n = queue_from_stop_line(lane.distance_m(ground), lengths, stopped, q.max_gap_m)
            out.append(QueueSample(camera=self.camera.name, lane=lane.name, ts=ts, length_m=length_m, vehicles=n))
        return out
