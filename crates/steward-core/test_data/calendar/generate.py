"""Golden expansions of change-calendar rules by python-dateutil (a peer nobody here wrote),
for `steward_core::calendar`. Regenerate and diff in CI:

    pip install python-dateutil==2.9.0.post0
    python generate.py > golden.json

Each case is an iCalendar DTSTART line and an RRULE; the first 12 occurrences are given as
UTC instants (RFC 3339), so rules written in a time zone show daylight saving time.
"""
import json
import sys
from datetime import timezone

from dateutil.rrule import rrulestr
from dateutil.tz import gettz

CASES = [
    ("weekly Friday-evening freeze, Berlin time across DST", "DTSTART;TZID=Europe/Berlin:20260306T180000", "FREQ=WEEKLY;BYDAY=FR"),
    ("year-end freeze", "DTSTART:20261220T000000Z", "FREQ=YEARLY"),
    ("last Friday of the month", "DTSTART:20260130T220000Z", "FREQ=MONTHLY;BYDAY=-1FR"),
    ("weekday nights, New York", "DTSTART;TZID=America/New_York:20261026T230000", "FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR;COUNT=12"),
    ("every second Tuesday until a date", "DTSTART:20260106T020000Z", "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;UNTIL=20260501T000000Z"),
    ("quarter-end, first business days", "DTSTART:20260101T000000Z", "FREQ=MONTHLY;BYMONTH=1,4,7,10;BYMONTHDAY=1,2"),
]

out = []
for name, dtstart, rule in CASES:
    tzid = dtstart.split("TZID=")[1].split(":")[0] if "TZID=" in dtstart else None
    stamp = dtstart.rsplit(":", 1)[1]
    text = f"DTSTART:{stamp}\nRRULE:{rule}"
    rules = rrulestr(text, tzinfos=None) if tzid is None else rrulestr(f"DTSTART:{stamp}\nRRULE:{rule}")
    occurrences = []
    for i, start in enumerate(rules):
        if i == 12:
            break
        if tzid is not None:
            start = start.replace(tzinfo=gettz(tzid))
        occurrences.append(start.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    out.append({"name": name, "dtstart": dtstart, "rrule": rule, "occurrences": occurrences})
json.dump({"cases": out}, sys.stdout, indent=1)
print()
