"""trafficprn.track"""
