"""Plumbing every stage shares: safe file writes, progress, and the crash tests' fault hook."""
