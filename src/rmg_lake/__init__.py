"""rmg-lake: an append-only data lake for the RMG sweater-factory field study.

    import rmg_lake
    lake = rmg_lake.open_lake("lake", create=True)
    lake.ingest("examples/inbox")
    lake.frame("wip", "knitting", "treatment")   # a polars DataFrame
"""

from rmg_lake.config import Config, Settings, load_config
from rmg_lake.errors import ConfigError, LakeError, LakeUnusable, SourceError
from rmg_lake.lake import IngestResult, Lake, open_lake

__all__ = [
    "Config",
    "ConfigError",
    "IngestResult",
    "Lake",
    "LakeError",
    "LakeUnusable",
    "Settings",
    "SourceError",
    "load_config",
    "open_lake",
]
