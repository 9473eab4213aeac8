"""trafficprn.detect.train"""
