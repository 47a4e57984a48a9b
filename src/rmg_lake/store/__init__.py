"""Keep and log: the raw store, the log of batches, each batch's file records and event
rows, and the ingest that writes them; checked by `verify`, upgraded by `upgrade`."""
