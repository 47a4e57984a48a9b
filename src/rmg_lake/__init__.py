"""rmg-lake: an append-only lake for the RMG field study."""
