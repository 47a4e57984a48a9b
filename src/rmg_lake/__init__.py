"""rmg-lake: an append-only data lake for the RMG sweater-factory field study.

    import rmg_lake
    lake = rmg_lake.open_lake("lake", create=True)
    lake.ingest("examples/inbox")
    lake.frame("wip", "knitting", "treatment")   # a polars DataFrame
    rmg_lake.story(lake, "3f2a9c1e")              # one observation, file by file
    rmg_lake.export(lake, "share", secret=rmg_lake.load_secret())
    rmg_lake.backup(lake, rmg_lake.open_target("/media/usb/rmg"))
    rmg_lake.publish_delta(lake, "/srv/rmg-delta")  # Delta tables, a version per batch

These names are the library a notebook calls; the packages below them are its stages.
"""

from rmg_lake.config import Config, Settings, load_config
from rmg_lake.deliver.backup import BackupResult, Pruned, backup, prune, restore, versions
from rmg_lake.deliver.delta import DeltaPublished, publish_delta
from rmg_lake.deliver.export import Exported, export
from rmg_lake.deliver.secret import StudySecret, init_secret, load_secret
from rmg_lake.deliver.story import Story, story
from rmg_lake.deliver.targets import Target, open_target
from rmg_lake.errors import (
    ConfigError,
    LakeError,
    LakeUnusable,
    SourceError,
    UnsupportedPlatform,
)
from rmg_lake.lake import Lake, open_lake
from rmg_lake.results import Corrected, IngestResult, RolledBack
from rmg_lake.sample.simulate import SimulationManifest, simulate

__all__ = [
    "BackupResult",
    "Config",
    "ConfigError",
    "Corrected",
    "DeltaPublished",
    "Exported",
    "IngestResult",
    "Lake",
    "LakeError",
    "LakeUnusable",
    "Pruned",
    "RolledBack",
    "Settings",
    "SimulationManifest",
    "SourceError",
    "Story",
    "StudySecret",
    "Target",
    "UnsupportedPlatform",
    "backup",
    "export",
    "init_secret",
    "load_config",
    "load_secret",
    "open_lake",
    "open_target",
    "prune",
    "publish_delta",
    "restore",
    "simulate",
    "story",
    "versions",
]
