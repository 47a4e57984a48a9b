"""`python -m rmg_lake` is `rmg-lake`."""

from rmg_lake.cli import main

main()
