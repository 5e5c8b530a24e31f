-- Canary routing (issue 5): per model and environment, beside the alias (the stable
-- version). Append-only like alias moves: the latest row of a (unit, model, environment)
-- is in force; a rule without a canary ends the canary. A shadow version gets a copy of
-- a share of requests, off the response path; its answers are compared, never returned.
CREATE TABLE routing_rules (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    business_unit TEXT NOT NULL,
    model TEXT NOT NULL,
    environment TEXT NOT NULL,
    canary_digest TEXT,
    canary_weight_bp BIGINT NOT NULL,
    sticky_header TEXT,
    shadow_digest TEXT,
    shadow_share_bp BIGINT NOT NULL,
    reason TEXT NOT NULL,
    set_by TEXT NOT NULL,
    set_at TEXT NOT NULL,
    audit_seq BIGINT NOT NULL
);
CREATE INDEX routing_rules_by_model ON routing_rules (business_unit, model, environment, id);
