"""`trafficprn plate` and `trafficprn colour`: read a plate or name a colour in an image.

argparse only at import; OpenCV and the OCR models load inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from trafficprn.errors import InputError

BOX_HELP = "vehicle or plate box in image px as x,y,w,h (default: the whole image)"


def register(subparsers: Any) -> None:
    plate = subparsers.add_parser(
        "plate",
        help="read a licence plate in a vehicle image or plate crop",
        description="Read a licence plate offline (RapidOCR, PP-OCR models from its wheel). "
        'Prints {"text": ..., "confidence": ...}; text is null when no plate is found.',
    )
    plate.add_argument("image", nargs="?", help="image file (a vehicle or a plate crop)")
    plate.add_argument("--box", help=BOX_HELP)
    plate.add_argument("--batch", metavar="FILE", help="read many: lines 'IMAGE [x y w h]', one JSON per line")
    plate.add_argument("--format", dest="plate_format", default="auto",
                       help="plate syntax: a template (L letter, D digit, * either, e.g. LLL-DDDD), several "
                            "separated by commas, a region (us, eu, br, de, fr, ...), auto (default: every "
                            "preset) or none (raw reads)")  # fmt: skip
    plate.add_argument("--backend", default="rapidocr", choices=["rapidocr", "paddleocr"], help="OCR backend")
    plate.add_argument("--json", action="store_true", help="print JSON")
    plate.set_defaults(func=_plate)

    colour = subparsers.add_parser(
        "colour", help="name the colour of a vehicle in an image", description="Name the body colour of a vehicle."
    )
    colour.add_argument("image", help="image file (a vehicle crop, or a frame with --box)")
    colour.add_argument("--box", help=BOX_HELP)
    colour.add_argument("--json", action="store_true", help="print JSON")
    colour.set_defaults(func=_colour)


def parse_box(text: str | None, sep: str = ",") -> tuple[int, int, int, int] | None:
    """'x,y,w,h' -> ints; InputError when malformed."""
    if text is None:
        return None
    parts = text.replace(sep, " ").split()
    try:
        x, y, w, h = (int(round(float(p))) for p in parts)
    except ValueError:
        raise InputError(f"expected a box as x,y,w,h (4 numbers, image px), got {text!r}") from None
    if w <= 0 or h <= 0:
        raise InputError(f"box width and height must be positive, got {text!r}")
    return x, y, w, h


def _load(path: str, box: tuple[int, int, int, int] | None) -> Any:
    import cv2

    image = cv2.imread(path, cv2.IMREAD_COLOR) if Path(path).is_file() else None
    if image is None:
        raise InputError(f"cannot read image {path!r} (missing, or not an image OpenCV can decode)")
    if box is None:
        return image
    x, y, w, h = box
    ih, iw = image.shape[:2]
    x1, y1, x2, y2 = max(x, 0), max(y, 0), min(x + w, iw), min(y + h, ih)
    if x2 <= x1 or y2 <= y1:
        raise InputError(f"box {box} lies outside the {iw}x{ih} image {path!r}")
    return image[y1:y2, x1:x2]


def _plate_line(result: Any) -> dict[str, Any]:
    return {"text": None, "confidence": 0.0} if result is None else result.to_dict()


def _plate(args: argparse.Namespace) -> int:
    if (args.image is None) == (args.batch is None):
        raise InputError("give either IMAGE or --batch FILE")
    from trafficprn.analytics.plates import PlateReader

    reader = PlateReader(args.plate_format, args.backend)
    if args.image is not None:
        result = reader.read(_load(args.image, parse_box(args.box)))
        if args.json:
            print(json.dumps(_plate_line(result)))
        else:
            print("no plate" if result is None else f"{result.text}  (confidence {result.confidence:.2f})")
        return 0
    batch = Path(args.batch)
    try:
        lines = batch.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"cannot read batch file {str(batch)!r}: {exc.strerror}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = shlex.split(line)
        if len(parts) not in (1, 5):
            raise InputError(f"{batch}:{number}: expected 'IMAGE [x y w h]', got {line!r}")
        box = parse_box(" ".join(parts[1:]), sep=" ") if len(parts) == 5 else None
        # relative paths: from the current folder, else from the batch file's folder
        path = parts[0] if Path(parts[0]).exists() else str(batch.parent / parts[0])
        try:
            out = _plate_line(reader.read(_load(path, box)))
        except InputError as exc:
            out = {"text": None, "confidence": 0.0, "error": str(exc)}
        out = {"image": parts[0], **out}
        if args.json:
            print(json.dumps(out), flush=True)
        else:
            print(f"{parts[0]}\t{out['text'] or 'no plate'}\t{out['confidence']:.2f}", flush=True)
    return 0


def _colour(args: argparse.Namespace) -> int:
    from trafficprn.analytics.colour import ColourClassifier

    result = ColourClassifier().classify(_load(args.image, parse_box(args.box)))
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        sys.stdout.write(f"{result.name}  (confidence {result.confidence:.2f})\n")
    return 0
