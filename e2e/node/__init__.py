"""Helpers of the node tier: what the tests on the real node start besides the cluster."""
