"""Test suite: unit, parity and download tests; notebooks are collected by nbval from notebooks/."""
