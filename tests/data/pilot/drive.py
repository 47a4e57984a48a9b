# -*- coding: utf-8 -*-
"""Run the 2014 pilot app (RMGProjects/RMG-Observations, its last commit) through a
scripted three-day pilot, and keep what it wrote as a Dropbox folder would hold it.

    python2.7 drive.py APP_DIR OUT_DIR        (just pilot APP_DIR)

APP_DIR is a checkout of the app; nothing of it is copied into OUT_DIR. The app runs
under CPython 2.7 (as on Pythonista 1.x) with its iPad modules stood in for (`console`
answers from the script below, `photos` takes a tiny JPEG, `bottle` serves no page:
the form's POST is made by hand) and a clock that the script moves. Its last commit does
not run as it stands; each defect is put right here at run time, as small as it can be,
and named in the transcript:

  1. it imports `RMG_utils`, which is now called `rmg_utils`;
  2. it calls `get_user_int`, which is now `get_user_integer`;
  3. `create_id_dicts` has its machine entries commented out;
  4. `populate_id_dict` calls `ID_validation_fmt.format_2` for `ID_validation_fmt_2.format`;
  5. the day's operator-ID dict is never saved, though `locate_most_recent` reads
     `<Dept>_id-YYYY_MM_DD_HH_MM` files back: it is saved under that name;
  6. `determine_task` passes the prompt where the buttons belong.

OUT_DIR gets `day-1/`, `day-2/`, `day-3/` (the app's folder at the end of each day, as
Dropbox synced it), `mtimes.json` (each file's modification time: git keeps none) and
`transcript.txt` (every prompt, answer and line the app printed).
"""
from __future__ import print_function

import __builtin__
import datetime as real_datetime
import json
import os
import shutil
import sys
import tempfile
import time
import types

FACTORY_UTC_OFFSET = real_datetime.timedelta(hours=6)  # Asia/Dhaka, no DST in 2014
EPOCH = real_datetime.datetime(1970, 1, 1)
# an 8×8 grey JPEG; each photo adds a comment naming itself, so no two are the same
JPEG = ("ffd8ffe000104a46494600010100000100010000ffdb004300100b0c0e0c0a100e0d0e12111013"
        "18281a181616183123251d283a333d3c3933383740485c4e404457453738506d51575f626768673e"
        "4d71797064785c656763ffc0000b080008000801011100ffc40014000100000000000000000000000"
        "000000000ffc40014100100000000000000000000000000000000ffda0008010100003f003fffd9")

# ---------------------------------------------------------------------------------------
# The script: what the observer answered, and when.

COUNTS = {"knitting_treatment": 4, "knitting_same_floor": 3, "knitting_different": 3,
          "linking_treatment": 3, "linking_same_floor": 2, "linking_different": 2}
FORM = {  # the start-of-day form, each morning: a code per machine, blank = unmanned
    1: {"knitting_treatment": ["1201", "1202", "", "1204"],
        "knitting_same_floor": ["1311", "1312", "1313"],
        "knitting_different": ["1421", "", "1423"],
        "linking_treatment": ["2301", "2302", "2303"],
        "linking_same_floor": ["2411", "2412"],
        "linking_different": ["2521", "2522"]},
    2: {"knitting_treatment": ["1201", "", "", "1204"],
        "knitting_same_floor": ["1311", "1312", "1313"],
        "knitting_different": ["1421", "1422", "1423"],
        "linking_treatment": ["2301", "2302", "2303"],
        "linking_same_floor": ["2411", "2412"],
        "linking_different": ["2521", ""]},
}
FORM[3] = FORM[2]  # the same answers: the same bytes, a new file time


def manned(code):
    return ["Manned", code, "Yes"]


UNMANNED = ["Unmanned", "Yes"]


def present(style, wip):
    return ["Present", style] + (wip if isinstance(wip, list) else [wip]) + ["Yes"]


ABSENT = ["Absent", "Yes"]
KNIT, LINK = ["Work in progress", "Knitting"], ["Work in progress", "Linking"]

DAYS = [  # (day, [(time, what, answers)]); an app run's answers in the order it asks
    (real_datetime.date(2014, 2, 9), [
        ("17:00", "machine counts", None)]),
    (real_datetime.date(2014, 2, 10), [
        ("07:45", "start of day", 1),
        ("08:00", "app", ["4", "3", "Yes"]  # first run: configure the app
         + manned("1201") + manned("1202") + UNMANNED + manned("1204")
         + manned("2301") + manned("2302") + manned("2303")
         + KNIT + present("a-112", "3.5") + present("a-112", ["4.3", "4.25"])  # a typo
         + ABSENT + present("b-07", "6")),
        ("08:30", "app", LINK + present("a-112", "2.25") + present("a-112", "5")
         + present("c-3", "0.75")),
        ("11:00", "app", KNIT + present("a-112", "7") + present("a-112", "8.5") + ABSENT
         + present("b-07", "9.25")),
        ("11:30", "app", LINK + present("a-112", "4") + present("a-112", "6.75")
         + present("c-3", "1.5")),
        ("15:00", "app", KNIT + present("a-112", "11") + present("a-112", "12") + ABSENT
         + present("b-07", "12.5")),
        ("15:30", "app", LINK + present("a-112", "6.5") + present("a-112", "9")
         + present("c-3", "2.25")),
        ("17:30", "sync", None)]),
    (real_datetime.date(2014, 2, 11), [
        ("07:45", "start of day", 2),
        ("08:00", "app", ["Yes", "No"] + UNMANNED + ["Yes", "Yes"]  # KN2 not come yet
         + ["Yes", "Yes", "Yes"]
         + KNIT + present("a-112", "1.25") + ABSENT + ABSENT + present("b-07", "2")),
        ("08:30", "app", LINK + present("a-112", "1") + present("a-115", "0.5")
         + present("c-3", "3")),
        ("10:00", "app", ["Interactions", "Knitting"]),  # the app saves nothing yet
        ("11:00", "app", KNIT + present("a-112", "4") + present("a-112", "2.5")  # KN2 late
         + ABSENT + present("b-07", "5.75")),
        ("11:30", "app", LINK + present("a-112", "3.25") + present("a-115", "2")
         + ["Present", "c-3", "4", "No"] + present("c-3", "4.5")),  # answered again
        ("15:00", "app", KNIT + present("a-112", "7.5") + present("a-112", "6") + ABSENT
         + present("b-07", "9")),
        ("15:30", "app", LINK + present("a-112", "5.5") + present("a-115", "4.25")
         + ABSENT),  # LI3 gone home
        ("17:30", "sync", None)]),
    (real_datetime.date(2014, 2, 12), [
        ("07:45", "start of day", 3),
        ("08:00", "app", ["Yes", "No"] + manned("1202") + ["Yes", "Yes"]
         + ["Yes", "Yes", "Yes"]
         + KNIT + present("a-112", "10") + present("a-112", "8") + ABSENT
         + present("b-07", "0.25")),
        ("08:30", "app", LINK + present("a-115", "0.25") + present("a-115", "5.5")
         + present("c-3", "1")),
        ("11:00", "app", KNIT + present("a-112", "13.5") + present("a-112", "11") + ABSENT
         + present("b-09", "2.5")),
        ("11:30", "app", LINK + present("a-115", "2") + present("a-115", "7.25")
         + present("c-3", "3.75")),
        ("14:00", "app", ["Other", "Linking"]),  # the app saves nothing yet
        ("15:00", "app", KNIT + present("a-112", "16") + present("a-112", "14") + ABSENT
         + present("b-09", "5")),
        ("15:30", "app", LINK + present("a-115", "4.5") + present("a-115", "9.75")
         + present("c-3", "6.5")),
        ("17:30", "sync", None)]),
]

SECONDS = {"alert": 6, "input": 14, "photo": 40}  # how long the observer takes

# ---------------------------------------------------------------------------------------
# The stand-ins: a clock, Pythonista's `console` and `photos`, and `bottle`.


class Clock(object):
    now = None

    def tick(self, seconds):
        self.now += real_datetime.timedelta(seconds=seconds)


CLOCK = Clock()


class FakeDatetime(real_datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return cls.combine(CLOCK.now.date(), CLOCK.now.time())


DATETIME = types.ModuleType("datetime")  # the app's `datetime`, with the script's clock
DATETIME.__dict__.update(real_datetime.__dict__)
DATETIME.datetime = FakeDatetime


class Transcript(object):
    def __init__(self):
        self.lines = []

    def say(self, text):
        stamp = CLOCK.now.strftime("%Y-%m-%d %H:%M:%S") if CLOCK.now else " " * 19
        for line in text.rstrip("\n").split("\n"):
            if line.strip(" |"):
                self.lines.append("%s  %s" % (stamp, line.rstrip()))

    def write(self, text):  # what the app prints
        for line in text.strip("\n").split("\n"):
            self.say("  | " + line)

    def flush(self):
        pass


LOG = Transcript()


class Answers(object):
    def __init__(self):
        self.queue = []

    def next(self, prompt, allowed=None):
        if not self.queue:
            raise SystemExit("the script has no answer for: %s" % prompt)
        answer = self.queue.pop(0)
        if allowed is not None and answer not in allowed:
            raise SystemExit("the script answers %r to %s %r" % (answer, prompt, allowed))
        return answer


ANSWERS = Answers()
console = types.ModuleType("console")


def _alert(title, message="", *buttons):
    buttons = tuple(b for b in buttons if b)
    if not 1 <= len(buttons) <= 3:  # Pythonista's console.alert: one to three buttons
        raise TypeError("console.alert() takes 1 to 3 buttons, %d given" % len(buttons))
    answer = ANSWERS.next(title, buttons)
    LOG.say("alert   %s — %s [%s] → %s" % (title, message, " | ".join(buttons), answer))
    CLOCK.tick(SECONDS["alert"])
    return buttons.index(answer) + 1


def _input_alert(title, message="", input="", ok_button_title="",
                 hide_cancel_button=False):
    answer = ANSWERS.next(title)
    LOG.say("input   %s → %s" % (title.strip(), answer))
    CLOCK.tick(SECONDS["input"])
    return answer


console.alert = _alert
console.input_alert = _input_alert
console.hud_alert = lambda message, icon="success", duration=1.8: LOG.say(
    "hud     %s (%s)" % (message, icon))
console.clear = lambda: None

photos = types.ModuleType("photos")


class Photo(object):
    def save(self, name):
        comment = "RMG pilot driver: %s" % name
        data = bytearray.fromhex(JPEG)
        segment = b"\xff\xfe" + bytearray([0, len(comment) + 2]) + comment.encode("ascii")
        with open(name, "wb") as out:
            out.write(bytes(data[:2] + segment + data[2:]))
        LOG.say("photo   %s" % name)


def _capture_image():
    CLOCK.tick(SECONDS["photo"])
    return Photo()


photos.capture_image = _capture_image
Image = types.ModuleType("Image")

bottle = types.ModuleType("bottle")
bottle.get = bottle.post = lambda path: (lambda handler: handler)
bottle.run = lambda **options: None
bottle.request = types.ModuleType("request")

# ---------------------------------------------------------------------------------------
# Files: each write stamps the file with the clock, as the tablet's would be.

WRITTEN = {}
_open = __builtin__.open


def _stamped_open(name, mode="r", *args):
    handle = _open(name, mode, *args)
    if "w" in mode or "a" in mode:
        WRITTEN[os.path.abspath(name)] = CLOCK.now
    return handle


def stamp_files():
    for path, when in sorted(WRITTEN.items()):
        seconds = (when - FACTORY_UTC_OFFSET - EPOCH).total_seconds()
        os.utime(path, (seconds, seconds))
    WRITTEN.clear()


# ---------------------------------------------------------------------------------------
# The app, its defects put right at run time.

def load_app(app_dir):
    sys.dont_write_bytecode = True
    sys.path.insert(0, app_dir)
    for name, module in (("console", console), ("photos", photos), ("Image", Image),
                         ("bottle", bottle)):
        sys.modules[name] = module
    import rmg_utils
    sys.modules["RMG_utils"] = rmg_utils  # (1)
    import RMG_Observations as app
    import rmg_set_machine_counts as counts
    import rmg_start_of_day as start
    for module in (rmg_utils, app):
        module.datetime = DATETIME
    app.get_user_int = rmg_utils.get_user_integer  # (2)

    def create_id_dicts(top_level_dict, department):  # (3): its commented-out entries
        id_dict = {"date_time": str()}
        id_dict.update({department[:2].upper() + str(n): {"mc_status": str(),
                                                           "worker_id": str()}
                        for n in range(1, top_level_dict[department] + 1)})
        return id_dict
    app.create_id_dicts = create_id_dicts

    class Format(str):  # (4)
        def format_2(self, *args, **values):
            return app.ID_validation_fmt_2.format(*args, **values)
    app.ID_validation_fmt = Format(app.ID_validation_fmt)

    daily = app.id_daily_routine

    def id_daily_routine(file_prefix, top_level_dict):  # (5)
        before = app.locate_most_recent(file_prefix + "_id")
        id_dict = daily(file_prefix, top_level_dict)
        if before is None or app.get_timestamp()[:10] not in before:
            app.write_to_json(id_dict, file_prefix + "_id-" + app.get_timestamp())
        return id_dict
    app.id_daily_routine = id_daily_routine

    def get_user_choice_num(in_title, in_prompt, in_choices, cancel=True):  # (6)
        return console.alert(in_title, in_prompt, *in_choices)
    app.get_user_choice_num = get_user_choice_num
    return app, counts, start


class Forms(dict):
    """bottle's `request.forms`: what the browser posted."""


def run(app_dir, out_dir):
    work = tempfile.mkdtemp(prefix="rmg-pilot-")
    os.chdir(work)
    __builtin__.open = _stamped_open
    time.sleep = lambda seconds: None
    app, counts, start = load_app(app_dir)
    LOG.say("RMG-Observations, run by drive.py under Python %s; its defects put right at "
            "run time:\n  (1) RMG_utils → rmg_utils, (2) get_user_int → get_user_integer, "
            "(3) create_id_dicts' machine entries, (4) ID_validation_fmt.format_2 → "
            "ID_validation_fmt_2.format,\n  (5) the day's operator-ID dict saved as "
            "<Dept>_id-YYYY_MM_DD_HH_MM, (6) determine_task's buttons"
            % sys.version.split()[0])
    mtimes = {}
    real_stdout, sys.stdout = sys.stdout, LOG
    try:
        for number, (day, steps) in enumerate(DAYS):
            for clock, what, answers in steps:
                hour, minute = map(int, clock.split(":"))
                CLOCK.now = real_datetime.datetime.combine(day, real_datetime.time(hour,
                                                                                  minute))
                if what == "machine counts":
                    LOG.say("== rmg_set_machine_counts.py: the machine counts form")
                    counts.check_results(Forms((k, str(v)) for k, v in COUNTS.items()))
                elif what == "start of day":
                    LOG.say("== rmg_start_of_day.py: who sits at which machine")
                    start.load_machine_operators()
                    form = {}
                    for group, codes in FORM[answers].items():
                        key = start.short_key(group)
                        form.update((key + str(i), code) for i, code in enumerate(codes))
                    start.check_results(Forms(form))
                elif what == "app":
                    LOG.say("== RMG_Observations.py")
                    ANSWERS.queue = list(answers)
                    app.main(["RMG_Observations.py"])
                    if ANSWERS.queue:
                        raise SystemExit("answers left over: %r" % ANSWERS.queue)
                stamp_files()
                if what == "sync":
                    folder = os.path.join(out_dir, "day-%d" % number)
                    LOG.say("== Dropbox: the folder synced as %s/" % os.path.basename(folder))
                    shutil.copytree(work, folder)
                    for name in sorted(os.listdir(folder)):
                        when = os.stat(os.path.join(work, name)).st_mtime
                        mtimes["day-%d/%s" % (number, name)] = int(when)
    finally:
        sys.stdout = real_stdout
        __builtin__.open = _open
    with _open(os.path.join(out_dir, "mtimes.json"), "w") as handle:
        json.dump(mtimes, handle, indent=1, sort_keys=True, separators=(",", ": "))
        handle.write("\n")
    with _open(os.path.join(out_dir, "transcript.txt"), "w") as handle:
        handle.write("\n".join(LOG.lines) + "\n")
    shutil.rmtree(work)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    app_dir, out_dir = (os.path.abspath(p) for p in sys.argv[1:])
    for name in os.listdir(out_dir) if os.path.isdir(out_dir) else []:
        if name.startswith("day-"):
            shutil.rmtree(os.path.join(out_dir, name))
    run(app_dir, out_dir)
