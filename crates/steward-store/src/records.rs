//! Stored records and the read queries over them. Records are storage shapes; the server
//! turns them into API documents.

use sqlx::FromRow;

use crate::{Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct BusinessUnit {
    pub name: String,
    pub description: String,
    pub created_at: String,
    pub created_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct User {
    pub name: String,
    pub display_name: String,
    pub email: String,
    pub created_at: String,
    pub created_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct RoleBinding {
    pub user_name: String,
    pub role: String,
    /// `*` for global, else a business unit.
    pub scope: String,
    pub granted_by: String,
    pub granted_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Certification {
    pub id: i64,
    pub user_name: String,
    pub name: String,
    pub issued_at: String,
    pub expires_at: String,
    pub recorded_by: String,
    pub recorded_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Token {
    pub id: String,
    pub user_name: String,
    pub name: String,
    /// Hex SHA-256 of the secret part; the secret itself is never stored.
    pub secret_hash: String,
    pub created_at: String,
    pub created_by: String,
    pub revoked_at: Option<String>,
    pub revoked_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Model {
    pub business_unit: String,
    pub name: String,
    pub owner: String,
    pub description: String,
    pub category: String,
    pub risk_class: String,
    pub tier: i64,
    pub created_at: String,
    pub created_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Version {
    pub digest: String,
    pub business_unit: String,
    pub model: String,
    pub version_label: String,
    /// The manifest as canonical JSON.
    pub manifest: String,
    /// The model card's text, searched by the inventory.
    pub card_text: String,
    pub author: String,
    pub registered_at: String,
    pub deprecated_at: Option<String>,
    pub deprecated_by: Option<String>,
    pub deprecation_reason: Option<String>,
    /// Package facts (JSON) when the version came from an OCI package.
    pub package: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Approval {
    pub id: i64,
    pub digest: String,
    pub approver: String,
    pub comment: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    pub name: String,
    pub production: bool,
    pub region: Option<String>,
    pub position: i64,
    pub created_at: String,
    pub created_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct AliasMove {
    pub id: i64,
    pub business_unit: String,
    pub model: String,
    pub environment: String,
    /// `None` when the alias was cleared.
    pub digest: Option<String>,
    pub previous_digest: Option<String>,
    pub moved_by: String,
    pub moved_at: String,
    pub reason: String,
    pub approval: Option<String>,
    pub audit_seq: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub tree_size: u64,
    pub note: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Blob {
    pub digest: String,
    pub size_bytes: i64,
    pub uploaded_by: String,
    pub uploaded_at: String,
}

/// A blob stored encrypted at rest, with its data key wrapped by a key-encryption key.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct SealedBlob {
    pub digest: String,
    pub ciphertext_digest: String,
    pub ciphertext_size: i64,
    pub algorithm: String,
    pub key_id: String,
    pub key_version: i64,
    pub wrapped_key: String,
    pub sealed_at: String,
}

/// A key-encryption key version as the database knows it.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct KeyVersion {
    pub key_id: String,
    pub version: i64,
    pub check_value: String,
    pub created_at: String,
    pub retired_at: Option<String>,
}

/// A change-calendar window as stored.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct CalendarWindow {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub dtstart: String,
    pub duration_seconds: i64,
    pub rrule: Option<String>,
    /// JSON array.
    pub environments: String,
    /// JSON array.
    pub business_units: String,
    pub reason: String,
    pub source: String,
    pub created_by: String,
    pub created_at: String,
}

/// A promotion request as stored.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Promotion {
    pub id: i64,
    pub business_unit: String,
    pub model: String,
    pub environment: String,
    pub digest: String,
    /// `pending`, `applied`, `rejected`, `withdrawn` or `expired`.
    pub state: String,
    pub template: String,
    pub reason: String,
    pub emergency_reason: Option<String>,
    pub requested_by: String,
    pub requested_at: String,
    pub expires_at: String,
    /// JSON: the gate evaluation recorded at the last transition.
    pub gates: String,
    pub closed_by: Option<String>,
    pub closed_at: Option<String>,
    pub close_reason: Option<String>,
    /// Where the alias pointed before the promotion was applied.
    pub previous_digest: Option<String>,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<String>,
    pub review_comment: Option<String>,
    /// JSON: the change record filed with the request.
    pub change_record: Option<String>,
    pub impact_statement: Option<String>,
    pub audit_seq: i64,
}

/// One approval of a promotion.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct PromotionApproval {
    pub id: i64,
    pub promotion_id: i64,
    pub approver: String,
    pub token_issuer: String,
    /// JSON array of role names.
    pub roles: String,
    /// JSON array of checklist items.
    pub checklist: String,
    /// JSON array of pre-mortem failure mode ids checked off.
    pub mitigated: String,
    pub accepts_breaking_changes: i64,
    pub comment: String,
    pub created_at: String,
    pub audit_seq: i64,
}

/// A drift report attached to a version.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct DriftReport {
    pub id: i64,
    pub digest: String,
    /// JSON.
    pub report: String,
    pub attached_by: String,
    pub attached_at: String,
    pub audit_seq: i64,
}

/// A webhook subscription as stored (the secret included: only the dispatcher reads it;
/// `Debug` hides it).
#[derive(Clone, PartialEq, Eq, FromRow)]
pub struct Webhook {
    pub id: i64,
    pub name: String,
    pub url: String,
    pub secret: String,
    /// JSON array of action prefixes.
    pub events: String,
    pub cursor_seq: i64,
    pub created_by: String,
    pub created_at: String,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("events", &self.events)
            .field("cursor_seq", &self.cursor_seq)
            .finish_non_exhaustive()
    }
}

/// The outcome of delivering one audit entry to one webhook.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct WebhookDelivery {
    pub id: i64,
    pub webhook_id: i64,
    pub seq: i64,
    pub event_type: String,
    /// `delivered` or `failed` (every attempt failed).
    pub outcome: String,
    pub attempts: i64,
    pub response_status: Option<i64>,
    pub error: Option<String>,
    pub first_attempt_at: String,
    pub last_attempt_at: String,
    pub audit_seq: i64,
}

/// A routing rule as stored.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct RoutingRuleRow {
    pub id: i64,
    pub business_unit: String,
    pub model: String,
    pub environment: String,
    pub canary_digest: Option<String>,
    pub canary_weight_bp: i64,
    pub sticky_header: Option<String>,
    pub shadow_digest: Option<String>,
    pub shadow_share_bp: i64,
    pub reason: String,
    pub set_by: String,
    pub set_at: String,
    pub audit_seq: i64,
}

/// A feature flag as stored.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct FlagRow {
    pub id: i64,
    pub business_unit: String,
    pub model: String,
    pub environment: String,
    pub flag: String,
    pub enabled: i64,
    pub fallback_digest: Option<String>,
    pub reason: String,
    pub set_by: String,
    pub set_at: String,
    pub audit_seq: i64,
}

pub(crate) const FLAG_COLUMNS: &str = "id, business_unit, model, environment, flag, enabled, fallback_digest, reason, set_by, set_at, audit_seq";

pub(crate) const ROUTING_COLUMNS: &str = "id, business_unit, model, environment, canary_digest, canary_weight_bp, sticky_header, shadow_digest, shadow_share_bp, reason, set_by, set_at, audit_seq";

pub(crate) const PROMOTION_COLUMNS: &str = "id, business_unit, model, environment, digest, state, template, reason, emergency_reason, requested_by, requested_at, expires_at, gates, closed_by, closed_at, close_reason, previous_digest, reviewed_by, reviewed_at, review_comment, change_record, impact_statement, audit_seq";

/// Inventory search. Every filter is optional; `text` matches name, description and the
/// model cards of the model's versions, case-insensitively.
#[derive(Debug, Clone, Default)]
pub struct SearchFilter {
    pub business_units: Option<Vec<String>>,
    pub risk_class: Option<String>,
    pub category: Option<String>,
    pub owner: Option<String>,
    /// Internal tier, 1 to 3.
    pub tier: Option<i64>,
    pub text: Option<String>,
    pub limit: u32,
}

const MODEL_COLUMNS: &str =
    "business_unit, name, owner, description, category, risk_class, tier, created_at, created_by";
const VERSION_COLUMNS: &str = "digest, business_unit, model, version_label, manifest, card_text, author, registered_at, deprecated_at, deprecated_by, deprecation_reason, package";
const ALIAS_COLUMNS: &str = "id, business_unit, model, environment, digest, previous_digest, moved_by, moved_at, reason, approval, audit_seq";

/// Escapes `%`, `_` and `\` for a LIKE pattern (with `ESCAPE '\'`).
fn like_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl Store {
    pub async fn business_units(&self) -> Result<Vec<BusinessUnit>, StoreError> {
        self.read(sqlx::query_as("SELECT name, description, created_at, created_by FROM business_units ORDER BY name").fetch_all(self.pool()))
            .await
    }

    pub async fn business_unit(&self, name: &str) -> Result<Option<BusinessUnit>, StoreError> {
        self.read(
            sqlx::query_as("SELECT name, description, created_at, created_by FROM business_units WHERE name = $1")
                .bind(name)
                .fetch_optional(self.pool()),
        )
        .await
    }

    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        self.read(
            sqlx::query_as(
                "SELECT name, display_name, email, created_at, created_by FROM users ORDER BY name",
            )
            .fetch_all(self.pool()),
        )
        .await
    }

    pub async fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        self.read(
            sqlx::query_as("SELECT name, display_name, email, created_at, created_by FROM users WHERE name = $1")
                .bind(name)
                .fetch_optional(self.pool()),
        )
        .await
    }

    pub async fn role_bindings(&self, user_name: &str) -> Result<Vec<RoleBinding>, StoreError> {
        self.read(
            sqlx::query_as(
                "SELECT user_name, role, scope, granted_by, granted_at FROM role_bindings WHERE user_name = $1 ORDER BY scope, role",
            )
            .bind(user_name)
            .fetch_all(self.pool()),
        )
        .await
    }

    pub async fn certifications(&self, user_name: &str) -> Result<Vec<Certification>, StoreError> {
        self.read(
            sqlx::query_as(
                "SELECT id, user_name, name, issued_at, expires_at, recorded_by, recorded_at FROM certifications WHERE user_name = $1 ORDER BY id",
            )
            .bind(user_name)
            .fetch_all(self.pool()),
        )
        .await
    }

    pub async fn token(&self, id: &str) -> Result<Option<Token>, StoreError> {
        self.read(
            sqlx::query_as(
                "SELECT id, user_name, name, secret_hash, created_at, created_by, revoked_at, revoked_by FROM tokens WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(self.pool()),
        )
        .await
    }

    pub async fn tokens(&self, user_name: &str) -> Result<Vec<Token>, StoreError> {
        self.read(
            sqlx::query_as(
                "SELECT id, user_name, name, secret_hash, created_at, created_by, revoked_at, revoked_by FROM tokens WHERE user_name = $1 ORDER BY created_at, id",
            )
            .bind(user_name)
            .fetch_all(self.pool()),
        )
        .await
    }

    /// Every token not revoked, of every user (the data plane's pin grants).
    pub async fn active_tokens(&self) -> Result<Vec<Token>, StoreError> {
        self.read(
            sqlx::query_as(
                "SELECT id, user_name, name, secret_hash, created_at, created_by, revoked_at, revoked_by FROM tokens WHERE revoked_at IS NULL ORDER BY id",
            )
            .fetch_all(self.pool()),
        )
        .await
    }

    pub async fn model(
        &self,
        business_unit: &str,
        name: &str,
    ) -> Result<Option<Model>, StoreError> {
        self.read(
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {MODEL_COLUMNS} FROM models WHERE business_unit = $1 AND name = $2"
            )))
            .bind(business_unit)
            .bind(name)
            .fetch_optional(self.pool()),
        )
        .await
    }

    pub async fn search_models(&self, filter: &SearchFilter) -> Result<Vec<Model>, StoreError> {
        // Build the WHERE clause from fixed fragments; every user value is a bind parameter.
        let mut clauses: Vec<String> = Vec::new();
        let mut binds: Vec<String> = Vec::new();
        let next = |value: String, binds: &mut Vec<String>| {
            binds.push(value);
            format!("${}", binds.len())
        };
        if let Some(units) = &filter.business_units {
            if units.is_empty() {
                return Ok(Vec::new());
            }
            let params: Vec<String> = units
                .iter()
                .map(|unit| next(unit.clone(), &mut binds))
                .collect();
            clauses.push(format!("m.business_unit IN ({})", params.join(", ")));
        }
        if let Some(risk_class) = &filter.risk_class {
            clauses.push(format!(
                "m.risk_class = {}",
                next(risk_class.clone(), &mut binds)
            ));
        }
        if let Some(category) = &filter.category {
            clauses.push(format!(
                "m.category = {}",
                next(category.clone(), &mut binds)
            ));
        }
        if let Some(owner) = &filter.owner {
            clauses.push(format!("m.owner = {}", next(owner.clone(), &mut binds)));
        }
        if let Some(tier) = filter.tier {
            // An integer, formatted by us: no injection is possible.
            clauses.push(format!("m.tier = {tier}"));
        }
        if let Some(text) = &filter.text {
            let param = next(like_pattern(text), &mut binds);
            clauses.push(format!(
                "(lower(m.name) LIKE {param} ESCAPE '\\' OR lower(m.description) LIKE {param} ESCAPE '\\' OR EXISTS (
                    SELECT 1 FROM versions v WHERE v.business_unit = m.business_unit AND v.model = m.name
                    AND lower(v.card_text) LIKE {param} ESCAPE '\\'))"
            ));
        }
        let where_clause = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let sql = format!(
            "SELECT {} FROM models m {where_clause} ORDER BY m.business_unit, m.name LIMIT {}",
            MODEL_COLUMNS
                .split(", ")
                .map(|column| format!("m.{column}"))
                .collect::<Vec<_>>()
                .join(", "),
            filter.limit.max(1)
        );
        let mut query = sqlx::query_as::<_, Model>(sqlx::AssertSqlSafe(sql));
        for bind in binds {
            query = query.bind(bind);
        }
        self.read(query.fetch_all(self.pool())).await
    }

    pub async fn version(&self, digest: &str) -> Result<Option<Version>, StoreError> {
        self.read(
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {VERSION_COLUMNS} FROM versions WHERE digest = $1"
            )))
            .bind(digest)
            .fetch_optional(self.pool()),
        )
        .await
    }

    pub async fn versions(
        &self,
        business_unit: &str,
        model: &str,
    ) -> Result<Vec<Version>, StoreError> {
        self.read(
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {VERSION_COLUMNS} FROM versions WHERE business_unit = $1 AND model = $2 ORDER BY registered_at, digest"
            )))
            .bind(business_unit)
            .bind(model)
            .fetch_all(self.pool()),
        )
        .await
    }

    pub async fn approvals(&self, digest: &str) -> Result<Vec<Approval>, StoreError> {
        self.read(
            sqlx::query_as("SELECT id, digest, approver, comment, created_at FROM approvals WHERE digest = $1 ORDER BY id")
                .bind(digest)
                .fetch_all(self.pool()),
        )
        .await
    }

    pub async fn environments(&self) -> Result<Vec<Environment>, StoreError> {
        let rows: Vec<(String, i64, i64, String, String, Option<String>)> = self
            .read(
                sqlx::query_as("SELECT name, production, position, created_at, created_by, region FROM environments ORDER BY position, name")
                    .fetch_all(self.pool()),
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(
                |(name, production, position, created_at, created_by, region)| Environment {
                    name,
                    production: production != 0,
                    region,
                    position,
                    created_at,
                    created_by,
                },
            )
            .collect())
    }

    pub async fn environment(&self, name: &str) -> Result<Option<Environment>, StoreError> {
        Ok(self
            .environments()
            .await?
            .into_iter()
            .find(|environment| environment.name == name))
    }

    /// The alias's latest move at or before `as_of` (RFC 3339 UTC), or now when `None`.
    pub async fn alias(
        &self,
        business_unit: &str,
        model: &str,
        environment: &str,
        as_of: Option<&str>,
    ) -> Result<Option<AliasMove>, StoreError> {
        let as_of = as_of.unwrap_or("9999");
        self.read(
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {ALIAS_COLUMNS} FROM alias_moves WHERE business_unit = $1 AND model = $2 AND environment = $3 AND moved_at <= $4
                 ORDER BY id DESC LIMIT 1"
            )))
            .bind(business_unit)
            .bind(model)
            .bind(environment)
            .bind(as_of)
            .fetch_optional(self.pool()),
        )
        .await
    }

    /// Every move of one alias, oldest first.
    pub async fn alias_history(
        &self,
        business_unit: &str,
        model: &str,
        environment: &str,
    ) -> Result<Vec<AliasMove>, StoreError> {
        self.read(
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {ALIAS_COLUMNS} FROM alias_moves WHERE business_unit = $1 AND model = $2 AND environment = $3 ORDER BY id"
            )))
            .bind(business_unit)
            .bind(model)
            .bind(environment)
            .fetch_all(self.pool()),
        )
        .await
    }

    /// Current alias of every environment of a model (or as of a time).
    pub async fn aliases(
        &self,
        business_unit: &str,
        model: &str,
        as_of: Option<&str>,
    ) -> Result<Vec<AliasMove>, StoreError> {
        let mut res = Vec::new();
        for environment in self.environments().await? {
            if let Some(alias) = self
                .alias(business_unit, model, &environment.name, as_of)
                .await?
            {
                res.push(alias);
            }
        }
        Ok(res)
    }

    /// Every stored advisory record (OSV JSON text).
    pub async fn advisories(&self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = self
            .read(
                sqlx::query_as("SELECT record FROM advisories ORDER BY id").fetch_all(self.pool()),
            )
            .await?;
        Ok(rows.into_iter().map(|(record,)| record).collect())
    }

    pub async fn blob(&self, digest: &str) -> Result<Option<Blob>, StoreError> {
        self.read(
            sqlx::query_as(
                "SELECT digest, size_bytes, uploaded_by, uploaded_at FROM blobs WHERE digest = $1",
            )
            .bind(digest)
            .fetch_optional(self.pool()),
        )
        .await
    }

    pub async fn sealed_blob(&self, digest: &str) -> Result<Option<SealedBlob>, StoreError> {
        self.read(
            sqlx::query_as(
                "SELECT digest, ciphertext_digest, ciphertext_size, algorithm, key_id, key_version, wrapped_key, sealed_at FROM sealed_blobs WHERE digest = $1",
            )
            .bind(digest)
            .fetch_optional(self.pool()),
        )
        .await
    }

    /// Every sealed blob, in digest order.
    pub async fn sealed_blobs(&self) -> Result<Vec<SealedBlob>, StoreError> {
        self.read(
            sqlx::query_as(
                "SELECT digest, ciphertext_digest, ciphertext_size, algorithm, key_id, key_version, wrapped_key, sealed_at FROM sealed_blobs ORDER BY digest",
            )
            .fetch_all(self.pool()),
        )
        .await
    }

    /// How many data keys each key-encryption key version wraps: `(key_id, version, count)`.
    pub async fn sealed_key_versions(&self) -> Result<Vec<(String, i64, i64)>, StoreError> {
        self.read(
            sqlx::query_as(
                "SELECT key_id, key_version, COUNT(*) FROM sealed_blobs GROUP BY key_id, key_version ORDER BY key_id, key_version",
            )
            .fetch_all(self.pool()),
        )
        .await
    }

    /// Every version of `key_id` the database knows, ascending.
    pub async fn key_versions(&self, key_id: &str) -> Result<Vec<KeyVersion>, StoreError> {
        self.read(
            sqlx::query_as(
                "SELECT key_id, version, check_value, created_at, retired_at FROM key_versions WHERE key_id = $1 ORDER BY version",
            )
            .bind(key_id)
            .fetch_all(self.pool()),
        )
        .await
    }

    /// Calendar windows not deleted, by id.
    pub async fn calendar_windows(&self) -> Result<Vec<CalendarWindow>, StoreError> {
        self.read(
            sqlx::query_as(
                "SELECT id, name, kind, dtstart, duration_seconds, rrule, environments, business_units, reason, source, created_by, created_at FROM calendar_windows WHERE deleted_at IS NULL ORDER BY id",
            )
            .fetch_all(self.pool()),
        )
        .await
    }

    pub async fn promotion(&self, id: i64) -> Result<Option<Promotion>, StoreError> {
        self.read(
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {PROMOTION_COLUMNS} FROM promotions WHERE id = $1"
            )))
            .bind(id)
            .fetch_optional(self.pool()),
        )
        .await
    }

    /// A model's promotions, newest first.
    pub async fn promotions(
        &self,
        business_unit: &str,
        model: &str,
        limit: u32,
    ) -> Result<Vec<Promotion>, StoreError> {
        self.read(
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {PROMOTION_COLUMNS} FROM promotions WHERE business_unit = $1 AND model = $2 ORDER BY id DESC LIMIT $3"
            )))
            .bind(business_unit)
            .bind(model)
            .bind(i64::from(limit))
            .fetch_all(self.pool()),
        )
        .await
    }

    /// The open (pending) promotion of a version to an environment, if any.
    pub async fn open_promotion_of(
        &self,
        digest: &str,
        environment: &str,
    ) -> Result<Option<Promotion>, StoreError> {
        self.read(
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {PROMOTION_COLUMNS} FROM promotions WHERE digest = $1 AND environment = $2 AND state = 'pending' ORDER BY id DESC LIMIT 1"
            )))
            .bind(digest)
            .bind(environment)
            .fetch_optional(self.pool()),
        )
        .await
    }

    pub async fn promotion_approvals(
        &self,
        promotion_id: i64,
    ) -> Result<Vec<PromotionApproval>, StoreError> {
        self.read(
            sqlx::query_as(
                "SELECT id, promotion_id, approver, token_issuer, roles, checklist, mitigated, accepts_breaking_changes, comment, created_at, audit_seq FROM promotion_approvals WHERE promotion_id = $1 ORDER BY id",
            )
            .bind(promotion_id)
            .fetch_all(self.pool()),
        )
        .await
    }

    /// The newest drift report attached to a version.
    pub async fn drift_report(&self, digest: &str) -> Result<Option<DriftReport>, StoreError> {
        self.read(
            sqlx::query_as(
                "SELECT id, digest, report, attached_by, attached_at, audit_seq FROM drift_reports WHERE digest = $1 ORDER BY id DESC LIMIT 1",
            )
            .bind(digest)
            .fetch_optional(self.pool()),
        )
        .await
    }

    /// Pending promotions, oldest first.
    pub async fn pending_promotions(&self, limit: u32) -> Result<Vec<Promotion>, StoreError> {
        self.read(
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {PROMOTION_COLUMNS} FROM promotions WHERE state = 'pending' ORDER BY id LIMIT $1"
            )))
            .bind(i64::from(limit))
            .fetch_all(self.pool()),
        )
        .await
    }

    /// Webhooks not deleted, by id.
    pub async fn webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        self.read(
            sqlx::query_as(
                "SELECT id, name, url, secret, events, cursor_seq, created_by, created_at FROM webhooks WHERE deleted_at IS NULL ORDER BY id",
            )
            .fetch_all(self.pool()),
        )
        .await
    }

    /// A webhook's deliveries, newest first.
    pub async fn webhook_deliveries(
        &self,
        webhook_id: i64,
        limit: u32,
    ) -> Result<Vec<WebhookDelivery>, StoreError> {
        self.read(
            sqlx::query_as(
                "SELECT id, webhook_id, seq, event_type, outcome, attempts, response_status, error, first_attempt_at, last_attempt_at, audit_seq FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY id DESC LIMIT $2",
            )
            .bind(webhook_id)
            .bind(i64::from(limit))
            .fetch_all(self.pool()),
        )
        .await
    }

    /// Where every alias points now: the latest move of each (business unit, model,
    /// environment), cleared ones included (digest `None`).
    pub async fn current_aliases(&self) -> Result<Vec<AliasMove>, StoreError> {
        self.read(
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {ALIAS_COLUMNS} FROM alias_moves a WHERE id = (SELECT MAX(id) FROM alias_moves b WHERE b.business_unit = a.business_unit AND b.model = a.model AND b.environment = a.environment) ORDER BY business_unit, model, environment"
            )))
            .fetch_all(self.pool()),
        )
        .await
    }

    /// The rule in force for every (unit, model, environment) that has one.
    pub async fn current_routing_rules(&self) -> Result<Vec<RoutingRuleRow>, StoreError> {
        self.read(
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {ROUTING_COLUMNS} FROM routing_rules r WHERE id = (SELECT MAX(id) FROM routing_rules s WHERE s.business_unit = r.business_unit AND s.model = r.model AND s.environment = r.environment) ORDER BY business_unit, model, environment"
            )))
            .fetch_all(self.pool()),
        )
        .await
    }

    /// The state in force of every flag.
    pub async fn current_flags(&self) -> Result<Vec<FlagRow>, StoreError> {
        self.read(
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {FLAG_COLUMNS} FROM feature_flags f WHERE id = (SELECT MAX(id) FROM feature_flags g WHERE g.business_unit = f.business_unit AND g.model = f.model AND g.environment = f.environment AND g.flag = f.flag) ORDER BY business_unit, model, environment, flag"
            )))
            .fetch_all(self.pool()),
        )
        .await
    }
}
