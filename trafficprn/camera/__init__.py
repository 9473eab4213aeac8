"""trafficprn.camera"""
