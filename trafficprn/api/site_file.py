"""site.yaml as the API keeps it: read when it changes, zones and calibration saved by a
YAML round trip.

`SiteHolder.get()` serves the last good config and never waits for a save in progress.
`SiteHolder.write_zones()` edits one camera's `legs` and `lanes`, `write_calibration()`
its `lens` and `calibration`, in place with
ruamel.yaml's round-trip mode, so the operator's comments, key order and flow style
survive; unchanged items keep their original text. The edited file is validated as a
whole before it replaces the old one (atomically, by rename).
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.util import load_yaml_guess_indent

from trafficprn.config import SiteConfig, load_site, parse_site
from trafficprn.errors import ConfigError


class SiteFileBroken(ConfigError):
    """site.yaml on disk cannot be read or parsed: the save refuses to touch it (409)."""


def _round_trip(text: str) -> YAML:
    """A round-trip YAML set to the file's own indentation (guessed from `text`)."""
    rt = YAML(typ="rt")
    rt.preserve_quotes = True
    rt.width = 4096  # keep long flow-style polygons on one line, as written
    _, indent, block_seq_indent = load_yaml_guess_indent(text)
    if indent is not None and block_seq_indent is not None:
        rt.indent(mapping=block_seq_indent if block_seq_indent else indent, sequence=indent,
                  offset=block_seq_indent)
    return rt


def _flow(items: Sequence[Any]) -> CommentedSeq:
    seq = CommentedSeq(items)
    seq.fa.set_flow_style()
    return seq


def _styled(item: Mapping[str, Any]) -> CommentedMap:
    """A new leg or lane in the file's usual style: points and polygons in flow style."""
    out = CommentedMap()
    for key, value in item.items():
        if isinstance(value, list) and value and isinstance(value[0], list | tuple):
            out[key] = _flow([_flow(list(p)) for p in value])
        else:
            out[key] = value
    return out


def _plain(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_plain(v) for v in node]
    return node


def _same(old: Any, new: Mapping[str, Any]) -> bool:
    def norm(x: Any) -> Any:
        if isinstance(x, Mapping):
            return {k: norm(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [norm(v) for v in x]
        if isinstance(x, int | float) and not isinstance(x, bool):
            return float(x)
        return x

    return bool(norm(_plain(old)) == norm(dict(new)))


def _update_list(parent: CommentedMap, key: str, items: list[dict[str, Any]]) -> bool:
    """Make parent[key] equal `items`, editing the existing sequence in place so that its
    own comments (a comment under `legs:`) and its unchanged items stay as they are.
    Returns whether anything changed."""
    seq = parent.get(key)
    if not isinstance(seq, CommentedSeq):
        parent[key] = CommentedSeq([_styled(i) for i in items])
        return True
    if len(seq) == len(items) and all(_same(a, b) for a, b in zip(seq, items, strict=True)):
        return False
    for i, item in enumerate(items):
        if i < len(seq):
            if not _same(seq[i], item):
                seq[i] = _styled(item)
        else:
            seq.append(_styled(item))
    while len(seq) > len(items):
        del seq[len(seq) - 1]
    return True


def _value(new: Any, old: Any) -> Any:
    """A new value in the file's style: lists of numbers (points, sizes) in flow style, a
    mapping in the style its predecessor had."""
    if isinstance(new, Mapping):
        out = CommentedMap((k, _value(v, None)) for k, v in new.items())
        if isinstance(old, CommentedMap) and old.fa.flow_style():
            out.fa.set_flow_style()
        return out
    if isinstance(new, list | tuple):
        items = [_value(v, None) for v in new]
        if all(not isinstance(v, Mapping) for v in new):
            return _flow(items)
        seq = CommentedSeq(items)
        flow_items = isinstance(old, CommentedSeq) and any(
            isinstance(o, CommentedMap) and o.fa.flow_style() for o in old)
        for item in seq:  # point pairs written one a line stay one a line
            if flow_items and isinstance(item, CommentedMap):
                item.fa.set_flow_style()
        return seq
    return new


def _update_map(parent: CommentedMap, key: str, new: Mapping[str, Any]) -> bool:
    """Make parent[key] equal the mapping `new`, key by key: unchanged values keep their
    text, the mapping keeps its comments; a list of mappings is edited item by item."""
    old = parent.get(key)
    if not isinstance(old, CommentedMap):
        parent[key] = _value(dict(new), old)
        return True
    if _same(old, new):
        return False
    if old.fa.flow_style():  # one line: rewrite it whole, in the same style
        parent[key] = _value(dict(new), old)
        return True
    for k in [k for k in old if k not in new]:
        del old[k]
    for k, v in new.items():
        current = old.get(k)
        if k in old and _same({"v": current}, {"v": v}):
            continue
        if isinstance(v, Mapping) and isinstance(current, CommentedMap):
            _update_map(old, k, v)
        elif isinstance(v, list) and v and isinstance(v[0], Mapping) and isinstance(current, CommentedSeq):
            _update_items(current, list(v))
        else:
            old[k] = _value(v, current)
    return True


def _update_items(seq: CommentedSeq, items: list[Any]) -> None:
    """Edit a sequence of mappings in place (calibration points), each new item in the style
    of the items it replaces."""
    style = seq[0] if len(seq) else None
    for i, item in enumerate(items):
        if i < len(seq):
            if not _same({"v": seq[i]}, {"v": item}):
                seq[i] = _value(item, seq[i])
        else:
            seq.append(_value(item, style))
    while len(seq) > len(items):
        del seq[len(seq) - 1]


@dataclass
class SiteHolder:
    """The site config from `path`, re-read when the file changes (the setup page writes it)."""

    path: Path | None
    _site: SiteConfig | None = None
    _mtime: float = -1.0
    _read_lock: threading.Lock = field(default_factory=threading.Lock)
    _write_lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self) -> SiteConfig | None:
        if self.path is None:
            return None
        # A reload in progress: serve the config we have rather than wait for it.
        if not self._read_lock.acquire(blocking=self._site is None):
            return self._site
        try:
            try:
                mtime = self.path.stat().st_mtime
            except OSError:
                return self._site
            if mtime != self._mtime:
                try:
                    self._site = load_site(self.path)
                    self._mtime = mtime
                except ConfigError:
                    if self._site is None:
                        raise
            return self._site
        finally:
            self._read_lock.release()

    def write_zones(self, camera: str, legs: list[dict[str, Any]], lanes: list[dict[str, Any]]) -> SiteConfig:
        """Replace one camera's legs and lanes in the YAML file; validate before writing.
        Raises SiteFileBroken when the file on disk is unreadable or invalid, ConfigError
        when the result would not be a valid site."""

        def edit(cam: CommentedMap) -> bool:
            changed = _update_list(cam, "legs", legs)
            return _update_list(cam, "lanes", lanes) or changed

        return self._edit_camera(camera, edit)

    def write_calibration(self, camera: str, lens: dict[str, Any], calibration: dict[str, Any]) -> SiteConfig:
        """Replace one camera's lens and calibration in the YAML file, editing the existing
        mappings key by key so that their comments and unchanged values stay as written.
        Raises like `write_zones`."""

        def edit(cam: CommentedMap) -> bool:
            changed = _update_map(cam, "lens", lens)
            return _update_map(cam, "calibration", calibration) or changed

        return self._edit_camera(camera, edit)

    def _edit_camera(self, camera: str, edit: Callable[[CommentedMap], bool]) -> SiteConfig:
        """Under the write lock: load the file (round trip), let `edit` change the camera's
        mapping in place (it returns whether anything changed), validate the whole site,
        write it atomically when changed."""
        if self.path is None:
            raise ConfigError("the API was started without a site config (settings.site_path)")
        with self._write_lock:
            try:
                text = self.path.read_text(encoding="utf-8")
                rt = _round_trip(text)
                doc = rt.load(text)
            except OSError as exc:
                raise SiteFileBroken(f"cannot read the site config: {exc.strerror}", source=str(self.path)) from None
            except YAMLError as exc:
                raise SiteFileBroken(f"the site config on disk is not valid YAML ({exc}); fix it by hand first",
                                     source=str(self.path)) from None
            if not isinstance(doc, CommentedMap):
                raise SiteFileBroken("the site config on disk is not a mapping; fix it by hand first",
                                     source=str(self.path))
            try:
                site = parse_site(_plain(doc), source=str(self.path))
            except ConfigError as exc:
                problem = str(exc).removeprefix(f"{self.path}: ")
                raise SiteFileBroken(f"the site config on disk is invalid ({problem}); fix it by hand first",
                                     source=str(self.path)) from None
            names = [c.name for c in site.cameras]
            if camera not in names:
                raise ConfigError(f"no camera named {camera!r}; the site has {names}", field="cameras")
            cam = next(c for c in doc["cameras"] if c.get("name") == camera)
            changed = edit(cam)
            checked = parse_site(_plain(doc), source="setup")
            if not changed:
                return checked  # an unchanged save leaves the file as it is, byte for byte
            buf = io.StringIO()
            rt.dump(doc, buf)
            tmp = self.path.with_suffix(self.path.suffix + ".tmp")
            tmp.write_text(buf.getvalue(), encoding="utf-8")
            os.replace(tmp, self.path)
            self._mtime = -1.0
        return checked
