"""Copy tests/data/pilot/day-N into a folder as Dropbox would: the files, their times."""
import json
import os
import shutil
import sys
from pathlib import Path

data, day, to = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
mtimes = json.loads((data / "mtimes.json").read_text())
for f in sorted((data / day).iterdir()):
    shutil.copyfile(f, to / f.name)
    t = mtimes[f"{day}/{f.name}"]
    os.utime(to / f.name, (t, t))
