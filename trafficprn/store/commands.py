"""`trafficprn db upgrade|downgrade|current|purge`: argparse only; work happens in handlers."""

from __future__ import annotations

import argparse
import os
from typing import Any

from trafficprn.errors import ConfigError


def register(subparsers: Any) -> None:
    db = subparsers.add_parser("db", help="database schema and retention")
    sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    url_help = "SQLAlchemy URL, e.g. postgresql://user:pass@host/db (default: $TRAFFICPRN_DATABASE_URL)"

    up = sub.add_parser("upgrade", help="migrate the schema up (to head)")
    up.add_argument("--db", help=url_help)
    up.add_argument("--revision", default="head", help="target revision (default: head)")
    up.add_argument("--site", help="site.yaml of this box: rows stored without a site take its name "
                                   "(default: TRAFFICPRN_SITE_PATH, if set)")
    up.set_defaults(func=_upgrade)

    down = sub.add_parser("downgrade", help="migrate the schema down (one step by default)")
    down.add_argument("--db", help=url_help)
    down.add_argument("--revision", default="-1", help="target revision: -1 (one step), base (empty) or an id")
    down.set_defaults(func=_downgrade)

    cur = sub.add_parser("current", help="print the schema revision of the database")
    cur.add_argument("--db", help=url_help)
    cur.set_defaults(func=_current)

    purge = sub.add_parser("purge", help="delete data older than the site's retention_days")
    purge.add_argument("--db", help=url_help)
    purge.add_argument("--site", required=True, help="site.yaml with privacy.retention_days")
    purge.set_defaults(func=_purge)


def _url(args: argparse.Namespace) -> str:
    url: str | None = args.db or os.environ.get("TRAFFICPRN_DATABASE_URL")
    if not url:
        raise ConfigError("no database URL: pass --db URL or set TRAFFICPRN_DATABASE_URL")
    return url


def _upgrade(args: argparse.Namespace) -> int:
    from trafficprn.store import db

    url = _url(args)
    site_path = args.site or os.environ.get("TRAFFICPRN_SITE_PATH")
    site_name = None
    if site_path:
        from trafficprn.config import load_site

        site_name = load_site(site_path).site.name
    db.upgrade(url, args.revision, site_name=site_name)
    print(f"{db.describe_url(url)}: schema at {db.current_revision(url)}")
    return 0


def _downgrade(args: argparse.Namespace) -> int:
    from trafficprn.store import db

    url = _url(args)
    db.downgrade(url, args.revision)
    print(f"{db.describe_url(url)}: schema at {db.current_revision(url) or 'base (empty)'}")
    return 0


def _current(args: argparse.Namespace) -> int:
    from trafficprn.store import db

    url = _url(args)
    rev = db.current_revision(url)
    print(f"{rev or 'base (empty)'} (head: {db.head_revision()})")
    return 0


def _purge(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from trafficprn.config import load_site
    from trafficprn.errors import StoreError
    from trafficprn.store import db
    from trafficprn.store.retention import purge

    url = _url(args)
    site = load_site(args.site)
    engine = db.make_engine(url)
    try:
        with engine.begin() as conn:
            result = purge(conn, site.privacy.retention_days)
    except SQLAlchemyError as exc:
        raise StoreError(db.explain_error(exc, url)) from None
    finally:
        engine.dispose()
    print(
        f"purged {result.passages} passages, {result.queue_samples} queue samples, {result.camera_status} status rows, "
        f"{result.heartbeats} heartbeats, {result.plate_reads} plate reads; cleared plates of {result.plates_cleared} passages"
    )
    return 0
