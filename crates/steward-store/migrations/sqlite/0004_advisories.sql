-- Vulnerability advisories in the OSV format, imported by operators (the machine has no
-- network). A record is replaced by a newer import of the same id.
CREATE TABLE advisories (
    id TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    imported_by TEXT NOT NULL,
    imported_at TEXT NOT NULL
);
