"""`rmg-lake watch`: the lake kept current as files arrive, and the morning's work run by
itself. `loop.Watcher` runs it; `arrivals` and `longpoll` know what arrived, `link` backs
off while the source cannot be reached, `schedule` keeps the daily times, and `service`
writes the user service that runs it at login. (Nothing is imported here: the command
line loads the parts it uses.)"""

__all__ = ["QUIET"]

QUIET = 30.0  # seconds with nothing arriving before the new files are taken in
