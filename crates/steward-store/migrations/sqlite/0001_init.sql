-- Steward schema, SQLite dialect. Every change to this file's twin in ../postgres must be
-- mirrored here; migrations are append-only. Times are RFC 3339 UTC text with
-- microseconds (`2026-11-27T07:47:45.123456Z`), so text order is time order on both
-- backends. JSON is stored as text.

-- The audit log. `audit_head` is a single row that every mutating transaction updates
-- first: it serialises writers (SQLite's write lock, PostgreSQL's row lock) so the chain
-- has no forks, and it holds the last sequence number and entry hash.
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE audit_events (
    seq INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    entry TEXT NOT NULL,
    entry_hash TEXT NOT NULL
);
CREATE INDEX audit_events_subject ON audit_events (subject, seq);
CREATE INDEX audit_events_actor ON audit_events (actor, seq);

CREATE TABLE checkpoints (
    tree_size INTEGER PRIMARY KEY,
    note TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE business_units (
    name TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
);

CREATE TABLE users (
    name TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    email TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
);

CREATE TABLE role_bindings (
    user_name TEXT NOT NULL REFERENCES users (name),
    role TEXT NOT NULL,
    scope TEXT NOT NULL,
    granted_by TEXT NOT NULL,
    granted_at TEXT NOT NULL,
    PRIMARY KEY (user_name, role, scope)
);

CREATE TABLE certifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_name TEXT NOT NULL REFERENCES users (name),
    name TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
CREATE INDEX certifications_user ON certifications (user_name);

CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users (name),
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at TEXT,
    revoked_by TEXT
);
CREATE INDEX tokens_user ON tokens (user_name);

CREATE TABLE models (
    business_unit TEXT NOT NULL REFERENCES business_units (name),
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    description TEXT NOT NULL,
    category TEXT NOT NULL,
    risk_class TEXT NOT NULL,
    tier INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (business_unit, name)
);

CREATE TABLE versions (
    digest TEXT PRIMARY KEY,
    business_unit TEXT NOT NULL,
    model TEXT NOT NULL,
    version_label TEXT NOT NULL,
    manifest TEXT NOT NULL,
    -- The model card's text (structured fields and Markdown), for inventory search.
    card_text TEXT NOT NULL,
    author TEXT NOT NULL,
    registered_at TEXT NOT NULL,
    deprecated_at TEXT,
    deprecated_by TEXT,
    deprecation_reason TEXT,
    UNIQUE (business_unit, model, version_label),
    FOREIGN KEY (business_unit, model) REFERENCES models (business_unit, name)
);

CREATE TABLE approvals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    digest TEXT NOT NULL REFERENCES versions (digest),
    approver TEXT NOT NULL,
    comment TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (digest, approver)
);

CREATE TABLE environments (
    name TEXT PRIMARY KEY,
    production INTEGER NOT NULL,
    position INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
);

-- Every alias move ever made; the current alias is the latest row per (model, environment).
CREATE TABLE alias_moves (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    business_unit TEXT NOT NULL,
    model TEXT NOT NULL,
    environment TEXT NOT NULL REFERENCES environments (name),
    digest TEXT REFERENCES versions (digest),
    previous_digest TEXT,
    moved_by TEXT NOT NULL,
    moved_at TEXT NOT NULL,
    reason TEXT NOT NULL,
    approval TEXT,
    audit_seq INTEGER NOT NULL,
    FOREIGN KEY (business_unit, model) REFERENCES models (business_unit, name)
);
CREATE INDEX alias_moves_lookup ON alias_moves (business_unit, model, environment, id);

CREATE TABLE blobs (
    digest TEXT PRIMARY KEY,
    size_bytes INTEGER NOT NULL,
    uploaded_by TEXT NOT NULL,
    uploaded_at TEXT NOT NULL
);
