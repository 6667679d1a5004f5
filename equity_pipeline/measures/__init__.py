"""Declarative quality measures: one YAML spec per measure in ``specs/``, value sets as data."""
