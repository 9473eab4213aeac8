"""The `trafficprn` command. Each package registers its own subcommands in a light
`commands.py` (argparse only; heavy imports happen inside the handlers)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence

from trafficprn.errors import TrafficPRNError

# Modules whose `register(subparsers)` adds subcommands. A module that does not exist
# yet is skipped, so the CLI works while the project grows.
COMMAND_MODULES = (
    "trafficprn.detect.commands",  # model info/export, detect
    "trafficprn.detect.train.commands",  # train
    "trafficprn.camera.commands",  # dewarp, calibrate
    "trafficprn.track.commands",  # track
    "trafficprn.analytics.commands",  # plate, colour
    "trafficprn.sim.commands",  # sim scene/dataset
    "trafficprn.store.commands",  # db upgrade/downgrade
    "trafficprn.services_commands",  # serve, run, process
    "trafficprn.demo",  # demo, eval
    "trafficprn.datasets.commands",  # data build
    "trafficprn.setup.commands",  # setup suggest
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trafficprn", description="Traffic-flow analysis with a PRN detector.")
    parser.add_argument("--debug", action="store_true", help="print tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and name.startswith(exc.name):
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    debug = args.debug or os.environ.get("TRAFFICPRN_DEBUG", "") not in ("", "0")
    try:
        result = args.func(args)
    except TrafficPRNError as exc:
        if debug:
            traceback.print_exc()
        print(f"trafficprn: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("trafficprn: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
