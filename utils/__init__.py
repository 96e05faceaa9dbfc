"""Helpers for the Segment Anything with OpenVINO notebooks: download, convert, predict, draw."""
