-- Promotions (issue 4): a request to point an environment's alias at a version. It is
-- pending until its gates pass (then applied: the alias moves in the same transaction),
-- or it is rejected, withdrawn or expires. `gates` is the evaluation recorded when the
-- request was made and when it was applied (JSON). Emergency requests carry a reason and
-- wait for a review after the fact.
CREATE TABLE promotions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    business_unit TEXT NOT NULL,
    model TEXT NOT NULL,
    environment TEXT NOT NULL,
    digest TEXT NOT NULL,
    state TEXT NOT NULL,
    template TEXT NOT NULL,
    reason TEXT NOT NULL,
    emergency_reason TEXT,
    requested_by TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    gates TEXT NOT NULL,
    closed_by TEXT,
    closed_at TEXT,
    close_reason TEXT,
    previous_digest TEXT,
    reviewed_by TEXT,
    reviewed_at TEXT,
    review_comment TEXT,
    -- The change record (C1, C4, C7; JSON) and its generated impact statement (C2).
    change_record TEXT,
    impact_statement TEXT,
    audit_seq INTEGER NOT NULL
);
CREATE INDEX promotions_by_model ON promotions (business_unit, model, environment, state);

-- Approvals of a promotion: one per person (idempotent), with the approver's roles at the
-- time, the checklist items they checked and whether they accept breaking schema changes.
CREATE TABLE promotion_approvals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    promotion_id INTEGER NOT NULL REFERENCES promotions (id),
    approver TEXT NOT NULL,
    token_issuer TEXT NOT NULL,
    roles TEXT NOT NULL,
    checklist TEXT NOT NULL,
    mitigated TEXT NOT NULL,
    accepts_breaking_changes INTEGER NOT NULL,
    comment TEXT NOT NULL,
    created_at TEXT NOT NULL,
    audit_seq INTEGER NOT NULL,
    UNIQUE (promotion_id, approver)
);

-- Drift reports attached to versions (G4): per-feature PSI and KS p-value, as computed by
-- `steward drift report` from a reference and a validation sample. The newest counts.
CREATE TABLE drift_reports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    digest TEXT NOT NULL,
    report TEXT NOT NULL,
    attached_by TEXT NOT NULL,
    attached_at TEXT NOT NULL,
    audit_seq INTEGER NOT NULL
);
CREATE INDEX drift_reports_by_digest ON drift_reports (digest);
