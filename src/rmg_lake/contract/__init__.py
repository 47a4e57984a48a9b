"""The observation file contract: names, models and validation."""

from rmg_lake.contract.models import (
    FACTORY_TZ,
    Observation,
    observation_adapter,
    parse_observation,
)
from rmg_lake.contract.names import FileName, original_name, parse_name
from rmg_lake.contract.validate import InvalidObservation, Validated, validate_file

__all__ = [
    "FACTORY_TZ",
    "FileName",
    "InvalidObservation",
    "Observation",
    "Validated",
    "observation_adapter",
    "original_name",
    "parse_name",
    "parse_observation",
    "validate_file",
]
