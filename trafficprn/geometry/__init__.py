"""trafficprn.geometry"""
