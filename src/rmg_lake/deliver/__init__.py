"""Deliver: what leaves the lake for people: the completion and flag reports, the HTML
page, exports and their data dictionary, backups, and one observation's story."""
