-- Versions of key-encryption keys (P5), as the database knows them: a check value (an HMAC
-- under the key) lets every replica prove its key file is the same key, a version number is
-- never made twice, and a retired version is never used again for wrapping.
CREATE TABLE key_versions (
    key_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    check_value TEXT NOT NULL,
    created_at TEXT NOT NULL,
    retired_at TEXT,
    PRIMARY KEY (key_id, version)
);
