"""API routers; each module holds short routes that call trafficprn.store.queries."""
