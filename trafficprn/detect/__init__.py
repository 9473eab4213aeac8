"""trafficprn.detect"""
