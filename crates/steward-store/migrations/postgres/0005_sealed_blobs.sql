-- Blobs stored encrypted at rest (P5): the plaintext digest names the blob; its data key is
-- kept only wrapped by a key-encryption key (`key_id` at `key_version`). Rotation rewrites
-- `wrapped_key` and `key_version`, never the ciphertext.
CREATE TABLE sealed_blobs (
    digest TEXT PRIMARY KEY REFERENCES blobs (digest),
    ciphertext_digest TEXT NOT NULL,
    ciphertext_size BIGINT NOT NULL,
    algorithm TEXT NOT NULL,
    key_id TEXT NOT NULL,
    key_version BIGINT NOT NULL,
    wrapped_key TEXT NOT NULL,
    sealed_at TEXT NOT NULL
);
CREATE INDEX sealed_blobs_key ON sealed_blobs (key_id, key_version);
