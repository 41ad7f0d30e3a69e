"""Assistive camera agent: spoken hazard warnings and scene descriptions."""

__version__ = "0.1.0"
