"""trafficprn.api"""
