-- Feature flags and kill switches (issue 5), per model, environment and flag name;
-- append-only: the latest row of a (unit, model, environment, flag) is in force. A flag
-- that is off answers 503, or sends requests to its fallback version when one is named.
CREATE TABLE feature_flags (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    business_unit TEXT NOT NULL,
    model TEXT NOT NULL,
    environment TEXT NOT NULL,
    flag TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    fallback_digest TEXT,
    reason TEXT NOT NULL,
    set_by TEXT NOT NULL,
    set_at TEXT NOT NULL,
    audit_seq INTEGER NOT NULL
);
CREATE INDEX feature_flags_by_key ON feature_flags (business_unit, model, environment, flag, id);
