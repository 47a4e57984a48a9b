"""Corrections: fixes to observations' values from a sheet, kept in the log, never in raw."""
