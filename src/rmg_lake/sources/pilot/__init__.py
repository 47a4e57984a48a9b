"""The 2014 pilot app's files, read as observations of the contract.

    files.py    what each file of the app's folder is, and the rounds it holds
    rounds.py   one round as a contract observation (version 1 with 1.1's additions)
    values.py   the pilot's times, codes, words and numbers as the contract's
"""

from rmg_lake.sources.pilot.files import ID_FILE, Listed, PilotFile, Reading, read_pilot
from rmg_lake.sources.pilot.rounds import IMPORTER, Study

__all__ = ["ID_FILE", "IMPORTER", "Listed", "PilotFile", "Reading", "Study", "read_pilot"]
