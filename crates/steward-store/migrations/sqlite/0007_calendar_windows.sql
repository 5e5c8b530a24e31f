-- Change calendars (C3): freeze windows (no change may land) and maintenance windows.
-- `dtstart` is the iCalendar start line, `rrule` the rule alone; environments and
-- business units are JSON arrays (empty: all). Deleting keeps the row (deleted_at).
CREATE TABLE calendar_windows (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    dtstart TEXT NOT NULL,
    duration_seconds INTEGER NOT NULL,
    rrule TEXT,
    environments TEXT NOT NULL,
    business_units TEXT NOT NULL,
    reason TEXT NOT NULL,
    source TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    deleted_by TEXT,
    deleted_at TEXT
);
