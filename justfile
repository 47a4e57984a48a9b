# rmg-lake's tasks. `just` alone runs the same checks as CI.

default: test

# Ingest the bundled sample (examples/inbox) into ./lake and show the completion table.
# The sample is rewritten first: same bytes, plus the file times git does not keep
# (they decide which of two versions of an observation was saved last).
ingest: sample
    @rmg-lake ingest
    @rmg-lake report

# The morning run: take the new files (from Dropbox, with a dropbox: source), write the
# report and the day's flags into lake/reports/ (and Dropbox's reports/), list the flags,
# and back up to `backup` of rmg-lake.toml, pruning old versions
daily:
    rmg-lake ingest --report
    rmg-lake check
    rmg-lake backup --prune

# Lint, type-check, then run the test suite (CI runs exactly this): a process per core,
# each test file in one of them (its fixtures made once); pytest-benchmark, where a
# machine has it, would refuse to run beside xdist
test: browser
    ruff check src tests observer_kit
    mypy
    pytest -q -n auto --dist loadfile -p no:benchmark

# A Chromium or Chrome for the tests that render the HTML report (tests/browser.py finds
# one on the PATH or in macOS's /Applications); if there is none, Debian's chromium is
# installed once with apt, and where there is no apt (macOS) one line says what to install
browser:
    #!/usr/bin/env bash
    set -eu
    python3 tests/browser.py > /dev/null && exit 0
    if command -v apt-get > /dev/null; then
        apt-get update -qq && apt-get install -y -qq chromium > /dev/null
    else
        echo "error: no Chromium or Chrome found, and no apt-get to install one — install one (on macOS: \`brew install --cask chromium\`, or Google Chrome), then run the same command again" >&2
        exit 1
    fi

# The long tests left out of `just test` (e.g. 1,000 files over a slow loopback link)
slow:
    pytest -q -m slow

# Kill 200 ingests with SIGKILL (at the fault hook's points and at random moments) and
# check each lake verifies and the next run completes it exactly; `just test` kills 25
torture:
    RMG_LAKE_KILLS=200 pytest -q tests/test_crash.py

# Benchmark rmg-lake against the pandas plan and the DuckDB floor (needs `.[bench]`):
# `just bench` runs 20k and 100k observation files, then the morning (2,000 new files,
# check, the HTML report, a backup); `just bench --scale large` adds 1M (hours); any
# option of bench/run.py passes through (`just bench --sizes 1000000 --runs 3`). Each run
# writes bench/results/ and the figures README.md and bench/README.md quote from them
bench *options:
    python3 bench/run.py {{options}}

# Run the 2014 pilot app (a checkout of RMGProjects/RMG-Observations) under CPython 2.7
# through its scripted three days, writing tests/data/pilot/ again (same bytes)
pilot app_dir:
    "$(pyenv root)/versions/2.7.18/bin/python" tests/data/pilot/drive.py {{app_dir}} tests/data/pilot

# Remake the bundled sample with the simulator (deterministic: same seed, same files)
sample:
    @rm -rf examples/inbox
    @rmg-lake simulate examples/inbox --days 21 --observers 4 --seed 7 > /dev/null
