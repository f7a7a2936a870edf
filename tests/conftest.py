"""Shared fixtures. Tests talk to real servers on loopback only."""
