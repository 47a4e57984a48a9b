"""A simulated study: realistic sync folders of observation files, good and bad."""
