"""trafficprn.store"""
