"""trafficprn.sim"""
