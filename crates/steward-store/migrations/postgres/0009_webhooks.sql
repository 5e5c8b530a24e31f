-- Outbound events (issue 4): webhooks receive audit entries whose action starts with one
-- of `events` (JSON array of prefixes) as CloudEvents 1.0, signed per Standard Webhooks
-- with `secret`. `cursor_seq` is the last audit entry considered; deliveries record
-- each entry's outcome. Deleting keeps the row (deleted_at).
CREATE TABLE webhooks (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    events TEXT NOT NULL,
    cursor_seq BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    deleted_by TEXT,
    deleted_at TEXT
);

CREATE TABLE webhook_deliveries (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id BIGINT NOT NULL REFERENCES webhooks (id),
    seq BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    outcome TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    response_status BIGINT,
    error TEXT,
    first_attempt_at TEXT NOT NULL,
    last_attempt_at TEXT NOT NULL,
    audit_seq BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, id);
