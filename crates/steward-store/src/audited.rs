//! `AuditedTx`: the only way to change state. It holds the audit head lock from its first
//! statement to its commit, and its commit appends the audit event in the same transaction.

use std::time::Duration;

use sqlx::{Any, AnyPool, Transaction};
use steward_core::audit::{Entry, EventDraft, entry_hash};

use crate::StoreError;
use crate::records::{
    AliasMove, CalendarWindow, FlagRow, KeyVersion, Model, PROMOTION_COLUMNS, Promotion,
    PromotionApproval, RoutingRuleRow, SealedBlob, Version, Webhook, WebhookDelivery,
};

/// An open mutation. Commit with `commit(event)`; drop to roll back.
pub struct AuditedTx {
    tx: Transaction<'static, Any>,
    timeout: Duration,
    /// Sequence number and hash of the last committed entry, read under the lock.
    head_seq: u64,
    head_hash: String,
}

impl AuditedTx {
    pub(crate) async fn begin(pool: &AnyPool, timeout: Duration) -> Result<AuditedTx, StoreError> {
        let work = async {
            let mut tx = pool.begin().await?;
            // A write first: SQLite takes its write lock now (not on a later upgrade, which
            // could fail with a stale snapshot), PostgreSQL locks the row until commit. The
            // same statement returns the head, saving a round trip per change.
            let (seq, hash): (i64, String) =
                sqlx::query_as("UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash")
                    .fetch_one(&mut *tx)
                    .await?;
            Ok::<_, sqlx::Error>((tx, seq, hash))
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(Ok((tx, seq, hash))) => Ok(AuditedTx {
                tx,
                timeout,
                head_seq: seq as u64,
                head_hash: hash,
            }),
            Ok(Err(err)) => Err(StoreError::backend(err)),
            Err(_) => Err(StoreError::Timeout(timeout)),
        }
    }

    /// The sequence number the commit's event will get.
    pub fn next_seq(&self) -> u64 {
        self.head_seq + 1
    }

    /// Appends the event and commits the change and the event together.
    pub async fn commit(self, draft: EventDraft, time: &str) -> Result<Entry, StoreError> {
        let mut entries = self.commit_all(vec![draft], time).await?;
        // INVARIANT: one draft in, one entry out.
        Ok(entries.remove(0))
    }

    /// Appends several events (in order) and commits them with the change, atomically.
    ///
    /// # Panics
    /// If `drafts` is empty: a commit without an event would break the audit invariant.
    pub async fn commit_all(
        mut self,
        drafts: Vec<EventDraft>,
        time: &str,
    ) -> Result<Vec<Entry>, StoreError> {
        assert!(
            !drafts.is_empty(),
            "a commit needs at least one audit event"
        );
        let timeout = self.timeout;
        let head_seq = self.head_seq;
        let mut prev_hash = self.head_hash.clone();
        let mut entries = Vec::with_capacity(drafts.len());
        let work = async {
            for (draft_idx, draft) in drafts.into_iter().enumerate() {
                let entry = Entry::new(
                    head_seq + 1 + draft_idx as u64,
                    time.to_owned(),
                    prev_hash.clone(),
                    draft,
                );
                let canonical = entry.canonical();
                let hash = entry_hash(&canonical);
                sqlx::query(
                    "INSERT INTO audit_events (seq, time, actor, action, subject, entry, entry_hash) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(entry.seq as i64)
                .bind(&entry.time)
                .bind(&entry.actor)
                .bind(&entry.action)
                .bind(&entry.subject)
                .bind(&canonical)
                .bind(&hash)
                .execute(&mut *self.tx)
                .await?;
                prev_hash = hash;
                entries.push(entry);
            }
            let last_seq = head_seq + entries.len() as u64;
            let updated =
                sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1 AND seq = $3")
                    .bind(last_seq as i64)
                    .bind(&prev_hash)
                    .bind(head_seq as i64)
                    .execute(&mut *self.tx)
                    .await?;
            // INVARIANT: we hold the head lock, so nobody else can have moved it.
            assert_eq!(
                updated.rows_affected(),
                1,
                "audit head moved under its lock"
            );
            Ok::<_, sqlx::Error>(())
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => return Err(StoreError::backend(err)),
            Err(_) => return Err(StoreError::Timeout(timeout)),
        }
        // Up to here a failure rolls everything back. Once COMMIT is sent, a timeout or an
        // error no longer says whether the database applied it.
        match tokio::time::timeout(timeout, self.tx.commit()).await {
            Ok(Ok(())) => Ok(entries),
            Ok(Err(err)) => Err(StoreError::OutcomeUnknown(Box::new(err))),
            Err(_) => Err(StoreError::OutcomeUnknown(Box::new(std::io::Error::other(
                format!("no answer to COMMIT within {timeout:?}"),
            )))),
        }
    }

    pub async fn rollback(self) -> Result<(), StoreError> {
        self.tx.rollback().await.map_err(StoreError::backend)
    }

    async fn exec(
        &mut self,
        query: sqlx::query::Query<'_, Any, sqlx::any::AnyArguments>,
        what: impl FnOnce() -> String,
    ) -> Result<u64, StoreError> {
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, query.execute(&mut *self.tx)).await {
            Ok(Ok(res)) => Ok(res.rows_affected()),
            Ok(Err(err)) => Err(StoreError::from_write(err, what)),
            Err(_) => Err(StoreError::Timeout(timeout)),
        }
    }

    pub async fn insert_business_unit(
        &mut self,
        name: &str,
        description: &str,
        by: &str,
        now: &str,
    ) -> Result<(), StoreError> {
        let query = sqlx::query("INSERT INTO business_units (name, description, created_at, created_by) VALUES ($1, $2, $3, $4)")
            .bind(name)
            .bind(description)
            .bind(now)
            .bind(by);
        self.exec(query, || format!("business unit `{name}`"))
            .await
            .map(drop)
    }

    pub async fn insert_user(
        &mut self,
        name: &str,
        display_name: &str,
        email: &str,
        by: &str,
        now: &str,
    ) -> Result<(), StoreError> {
        let query = sqlx::query("INSERT INTO users (name, display_name, email, created_at, created_by) VALUES ($1, $2, $3, $4, $5)")
            .bind(name)
            .bind(display_name)
            .bind(email)
            .bind(now)
            .bind(by);
        self.exec(query, || format!("user `{name}`"))
            .await
            .map(drop)
    }

    pub async fn grant_role(
        &mut self,
        user_name: &str,
        role: &str,
        scope: &str,
        by: &str,
        now: &str,
    ) -> Result<(), StoreError> {
        let query = sqlx::query("INSERT INTO role_bindings (user_name, role, scope, granted_by, granted_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(user_name)
            .bind(role)
            .bind(scope)
            .bind(by)
            .bind(now);
        self.exec(query, || {
            format!("role `{role}` in scope `{scope}` for `{user_name}`")
        })
        .await
        .map(drop)
    }

    /// Returns whether the binding existed.
    pub async fn revoke_role(
        &mut self,
        user_name: &str,
        role: &str,
        scope: &str,
    ) -> Result<bool, StoreError> {
        let query = sqlx::query(
            "DELETE FROM role_bindings WHERE user_name = $1 AND role = $2 AND scope = $3",
        )
        .bind(user_name)
        .bind(role)
        .bind(scope);
        self.exec(query, String::new).await.map(|n| n == 1)
    }

    pub async fn insert_certification(
        &mut self,
        user_name: &str,
        name: &str,
        issued_at: &str,
        expires_at: &str,
        by: &str,
        now: &str,
    ) -> Result<i64, StoreError> {
        let query = sqlx::query_as::<_, (i64,)>(
            "INSERT INTO certifications (user_name, name, issued_at, expires_at, recorded_by, recorded_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(user_name)
        .bind(name)
        .bind(issued_at)
        .bind(expires_at)
        .bind(by)
        .bind(now);
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, query.fetch_one(&mut *self.tx)).await {
            Ok(Ok((id,))) => Ok(id),
            Ok(Err(err)) => Err(StoreError::from_write(err, || {
                format!("certification `{name}`")
            })),
            Err(_) => Err(StoreError::Timeout(timeout)),
        }
    }

    pub async fn insert_token(
        &mut self,
        id: &str,
        user_name: &str,
        name: &str,
        secret_hash: &str,
        by: &str,
        now: &str,
    ) -> Result<(), StoreError> {
        let query = sqlx::query("INSERT INTO tokens (id, user_name, name, secret_hash, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(id)
            .bind(user_name)
            .bind(name)
            .bind(secret_hash)
            .bind(now)
            .bind(by);
        self.exec(query, || format!("token `{id}`")).await.map(drop)
    }

    /// Returns whether a live token was revoked.
    pub async fn revoke_token(
        &mut self,
        id: &str,
        by: &str,
        now: &str,
    ) -> Result<bool, StoreError> {
        let query = sqlx::query("UPDATE tokens SET revoked_at = $1, revoked_by = $2 WHERE id = $3 AND revoked_at IS NULL").bind(now).bind(by).bind(id);
        self.exec(query, String::new).await.map(|n| n == 1)
    }

    pub async fn insert_model(&mut self, model: &Model) -> Result<(), StoreError> {
        let query = sqlx::query(
            "INSERT INTO models (business_unit, name, owner, description, category, risk_class, tier, created_at, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&model.business_unit)
        .bind(&model.name)
        .bind(&model.owner)
        .bind(&model.description)
        .bind(&model.category)
        .bind(&model.risk_class)
        .bind(model.tier)
        .bind(&model.created_at)
        .bind(&model.created_by);
        self.exec(query, || {
            format!("model `{}/{}`", model.business_unit, model.name)
        })
        .await
        .map(drop)
    }

    pub async fn insert_version(&mut self, version: &Version) -> Result<(), StoreError> {
        let query = sqlx::query(
            "INSERT INTO versions (digest, business_unit, model, version_label, manifest, card_text, author, registered_at, package)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&version.digest)
        .bind(&version.business_unit)
        .bind(&version.model)
        .bind(&version.version_label)
        .bind(&version.manifest)
        .bind(&version.card_text)
        .bind(&version.author)
        .bind(&version.registered_at)
        .bind(&version.package);
        self.exec(query, || {
            format!(
                "version `{}` of `{}/{}` (or its digest)",
                version.version_label, version.business_unit, version.model
            )
        })
        .await
        .map(drop)
    }

    /// Returns whether the version was live (not already deprecated).
    pub async fn deprecate_version(
        &mut self,
        digest: &str,
        reason: &str,
        by: &str,
        now: &str,
    ) -> Result<bool, StoreError> {
        let query = sqlx::query(
            "UPDATE versions SET deprecated_at = $1, deprecated_by = $2, deprecation_reason = $3 WHERE digest = $4 AND deprecated_at IS NULL",
        )
        .bind(now)
        .bind(by)
        .bind(reason)
        .bind(digest);
        self.exec(query, String::new).await.map(|n| n == 1)
    }

    pub async fn insert_approval(
        &mut self,
        digest: &str,
        approver: &str,
        comment: &str,
        now: &str,
    ) -> Result<(), StoreError> {
        let query = sqlx::query(
            "INSERT INTO approvals (digest, approver, comment, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(digest)
        .bind(approver)
        .bind(comment)
        .bind(now);
        self.exec(query, || format!("approval of `{digest}` by `{approver}`"))
            .await
            .map(drop)
    }

    pub async fn insert_environment(
        &mut self,
        name: &str,
        production: bool,
        position: i64,
        by: &str,
        now: &str,
    ) -> Result<(), StoreError> {
        let query = sqlx::query("INSERT INTO environments (name, production, position, created_at, created_by) VALUES ($1, $2, $3, $4, $5)")
            .bind(name)
            .bind(i64::from(production))
            .bind(position)
            .bind(now)
            .bind(by);
        self.exec(query, || format!("environment `{name}`"))
            .await
            .map(drop)
    }

    /// Stores (or replaces) an OSV advisory by id.
    pub async fn upsert_advisory(
        &mut self,
        id: &str,
        record: &str,
        by: &str,
        now: &str,
    ) -> Result<(), StoreError> {
        let query = sqlx::query(
            "INSERT INTO advisories (id, record, imported_by, imported_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET record = excluded.record, imported_by = excluded.imported_by, imported_at = excluded.imported_at",
        )
        .bind(id)
        .bind(record)
        .bind(by)
        .bind(now);
        self.exec(query, String::new).await.map(drop)
    }

    /// Declares the region an environment runs in (for usage terms).
    pub async fn set_environment_region(
        &mut self,
        name: &str,
        region: &str,
    ) -> Result<(), StoreError> {
        let query = sqlx::query("UPDATE environments SET region = $1 WHERE name = $2")
            .bind(region)
            .bind(name);
        self.exec(query, String::new).await.map(drop)
    }

    /// Whether the version exists and is not deprecated, read under the lock.
    pub async fn version_is_live(&mut self, digest: &str) -> Result<bool, StoreError> {
        let query = sqlx::query_as::<_, (i64,)>(
            "SELECT COUNT(*) FROM versions WHERE digest = $1 AND deprecated_at IS NULL",
        )
        .bind(digest);
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, query.fetch_one(&mut *self.tx)).await {
            Ok(Ok((n,))) => Ok(n == 1),
            Ok(Err(err)) => Err(StoreError::backend(err)),
            Err(_) => Err(StoreError::Timeout(timeout)),
        }
    }

    /// Current target of an alias, read under the lock (so a concurrent move cannot slip in).
    pub async fn current_alias(
        &mut self,
        business_unit: &str,
        model: &str,
        environment: &str,
    ) -> Result<Option<String>, StoreError> {
        let query = sqlx::query_as::<_, (Option<String>,)>(
            "SELECT digest FROM alias_moves WHERE business_unit = $1 AND model = $2 AND environment = $3 ORDER BY id DESC LIMIT 1",
        )
        .bind(business_unit)
        .bind(model)
        .bind(environment);
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, query.fetch_optional(&mut *self.tx)).await {
            Ok(Ok(row)) => Ok(row.and_then(|(digest,)| digest)),
            Ok(Err(err)) => Err(StoreError::backend(err)),
            Err(_) => Err(StoreError::Timeout(timeout)),
        }
    }

    /// Records an alias move; `audit_seq` is filled with this transaction's event number.
    pub async fn move_alias(&mut self, alias: &AliasMove) -> Result<(), StoreError> {
        let query = sqlx::query(
            "INSERT INTO alias_moves (business_unit, model, environment, digest, previous_digest, moved_by, moved_at, reason, approval, audit_seq)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&alias.business_unit)
        .bind(&alias.model)
        .bind(&alias.environment)
        .bind(&alias.digest)
        .bind(&alias.previous_digest)
        .bind(&alias.moved_by)
        .bind(&alias.moved_at)
        .bind(&alias.reason)
        .bind(&alias.approval)
        .bind(self.next_seq() as i64);
        self.exec(query, String::new).await.map(drop)
    }

    /// Returns false when the blob was already recorded (content addressing: same bytes).
    pub async fn insert_blob(
        &mut self,
        digest: &str,
        size_bytes: u64,
        by: &str,
        now: &str,
    ) -> Result<bool, StoreError> {
        let query = sqlx::query(
            "INSERT INTO blobs (digest, size_bytes, uploaded_by, uploaded_at) VALUES ($1, $2, $3, $4) ON CONFLICT (digest) DO NOTHING",
        )
        .bind(digest)
        .bind(size_bytes as i64)
        .bind(by)
        .bind(now);
        self.exec(query, String::new).await.map(|n| n == 1)
    }

    /// Records that a blob is stored sealed; false when it already was.
    pub async fn insert_sealed_blob(&mut self, sealed: &SealedBlob) -> Result<bool, StoreError> {
        let query = sqlx::query(
            "INSERT INTO sealed_blobs (digest, ciphertext_digest, ciphertext_size, algorithm, key_id, key_version, wrapped_key, sealed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (digest) DO NOTHING",
        )
        .bind(&sealed.digest)
        .bind(&sealed.ciphertext_digest)
        .bind(sealed.ciphertext_size)
        .bind(&sealed.algorithm)
        .bind(&sealed.key_id)
        .bind(sealed.key_version)
        .bind(&sealed.wrapped_key)
        .bind(&sealed.sealed_at);
        self.exec(query, String::new).await.map(|n| n == 1)
    }

    /// Replaces a sealed blob's wrapped data key (rotation); the ciphertext is untouched.
    /// `from_version` guards against a concurrent rewrap: false when the row had moved on.
    pub async fn rewrap_sealed_blob(
        &mut self,
        digest: &str,
        from_version: i64,
        key_version: i64,
        wrapped_key: &str,
    ) -> Result<bool, StoreError> {
        let query = sqlx::query(
            "UPDATE sealed_blobs SET key_version = $1, wrapped_key = $2 WHERE digest = $3 AND key_version = $4",
        )
        .bind(key_version)
        .bind(wrapped_key)
        .bind(digest)
        .bind(from_version);
        self.exec(query, String::new).await.map(|n| n == 1)
    }

    /// How many data keys are still wrapped by `key_id` at `version` or below, read under
    /// the lock.
    pub async fn count_wrapped_up_to(
        &mut self,
        key_id: &str,
        version: i64,
    ) -> Result<i64, StoreError> {
        let query = sqlx::query_as::<_, (i64,)>(
            "SELECT COUNT(*) FROM sealed_blobs WHERE key_id = $1 AND key_version <= $2",
        )
        .bind(key_id)
        .bind(version);
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, query.fetch_one(&mut *self.tx)).await {
            Ok(Ok((n,))) => Ok(n),
            Ok(Err(err)) => Err(StoreError::backend(err)),
            Err(_) => Err(StoreError::Timeout(timeout)),
        }
    }

    /// Records a new key version; false when that number is already known (another
    /// replica made it).
    pub async fn insert_key_version(&mut self, version: &KeyVersion) -> Result<bool, StoreError> {
        let query = sqlx::query(
            "INSERT INTO key_versions (key_id, version, check_value, created_at, retired_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (key_id, version) DO NOTHING",
        )
        .bind(&version.key_id)
        .bind(version.version)
        .bind(&version.check_value)
        .bind(&version.created_at)
        .bind(&version.retired_at);
        self.exec(query, String::new).await.map(|n| n == 1)
    }

    /// Marks every version of `key_id` up to `version` retired.
    pub async fn retire_key_versions_up_to(
        &mut self,
        key_id: &str,
        version: i64,
        now: &str,
    ) -> Result<(), StoreError> {
        let query = sqlx::query(
            "UPDATE key_versions SET retired_at = $1 WHERE key_id = $2 AND version <= $3 AND retired_at IS NULL",
        )
        .bind(now)
        .bind(key_id)
        .bind(version);
        self.exec(query, String::new).await.map(drop)
    }

    /// Whether `version` of `key_id` may wrap a data key now, read under the lock: known to
    /// the database and not retired.
    pub async fn key_version_usable(
        &mut self,
        key_id: &str,
        version: i64,
    ) -> Result<bool, StoreError> {
        let query = sqlx::query_as::<_, (i64,)>(
            "SELECT COUNT(*) FROM key_versions WHERE key_id = $1 AND version = $2 AND retired_at IS NULL",
        )
        .bind(key_id)
        .bind(version);
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, query.fetch_one(&mut *self.tx)).await {
            Ok(Ok((n,))) => Ok(n == 1),
            Ok(Err(err)) => Err(StoreError::backend(err)),
            Err(_) => Err(StoreError::Timeout(timeout)),
        }
    }

    /// The newest version of `key_id` the database records and has not retired, with its
    /// check value, read under the lock: the version new data keys are wrapped under.
    pub async fn latest_usable_key_version(
        &mut self,
        key_id: &str,
    ) -> Result<Option<(i64, String)>, StoreError> {
        let query = sqlx::query_as::<_, (i64, String)>(
            "SELECT version, check_value FROM key_versions WHERE key_id = $1 AND retired_at IS NULL ORDER BY version DESC LIMIT 1",
        )
        .bind(key_id);
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, query.fetch_optional(&mut *self.tx)).await {
            Ok(Ok(row)) => Ok(row),
            Ok(Err(err)) => Err(StoreError::backend(err)),
            Err(_) => Err(StoreError::Timeout(timeout)),
        }
    }

    /// Stores a calendar window; returns its id.
    pub async fn insert_calendar_window(
        &mut self,
        window: &CalendarWindow,
    ) -> Result<i64, StoreError> {
        let query = sqlx::query_as::<_, (i64,)>(
            "INSERT INTO calendar_windows (name, kind, dtstart, duration_seconds, rrule, environments, business_units, reason, source, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        )
        .bind(&window.name)
        .bind(&window.kind)
        .bind(&window.dtstart)
        .bind(window.duration_seconds)
        .bind(&window.rrule)
        .bind(&window.environments)
        .bind(&window.business_units)
        .bind(&window.reason)
        .bind(&window.source)
        .bind(&window.created_by)
        .bind(&window.created_at);
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, query.fetch_one(&mut *self.tx)).await {
            Ok(Ok((id,))) => Ok(id),
            Ok(Err(err)) => Err(StoreError::backend(err)),
            Err(_) => Err(StoreError::Timeout(timeout)),
        }
    }

    /// Marks a window deleted; false when there is no such live window.
    pub async fn delete_calendar_window(
        &mut self,
        id: i64,
        by: &str,
        now: &str,
    ) -> Result<bool, StoreError> {
        let query = sqlx::query(
            "UPDATE calendar_windows SET deleted_by = $1, deleted_at = $2 WHERE id = $3 AND deleted_at IS NULL",
        )
        .bind(by)
        .bind(now)
        .bind(id);
        self.exec(query, String::new).await.map(|n| n == 1)
    }

    async fn fetch_optional<T>(
        &mut self,
        query: sqlx::query::QueryAs<'_, Any, T, sqlx::any::AnyArguments>,
    ) -> Result<Option<T>, StoreError>
    where
        T: Send + Unpin + for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
    {
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, query.fetch_optional(&mut *self.tx)).await {
            Ok(Ok(row)) => Ok(row),
            Ok(Err(err)) => Err(StoreError::backend(err)),
            Err(_) => Err(StoreError::Timeout(timeout)),
        }
    }

    /// Records a promotion request; returns its id. `audit_seq` is this transaction's event.
    pub async fn insert_promotion(&mut self, promotion: &Promotion) -> Result<i64, StoreError> {
        let seq = self.next_seq() as i64;
        let query = sqlx::query_as::<_, (i64,)>(
            "INSERT INTO promotions (business_unit, model, environment, digest, state, template, reason, emergency_reason, requested_by, requested_at, expires_at, gates, previous_digest, change_record, impact_statement, audit_seq)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING id",
        )
        .bind(&promotion.business_unit)
        .bind(&promotion.model)
        .bind(&promotion.environment)
        .bind(&promotion.digest)
        .bind(&promotion.state)
        .bind(&promotion.template)
        .bind(&promotion.reason)
        .bind(&promotion.emergency_reason)
        .bind(&promotion.requested_by)
        .bind(&promotion.requested_at)
        .bind(&promotion.expires_at)
        .bind(&promotion.gates)
        .bind(&promotion.previous_digest)
        .bind(&promotion.change_record)
        .bind(&promotion.impact_statement)
        .bind(seq);
        match self.fetch_optional(query).await? {
            Some((id,)) => Ok(id),
            None => Err(StoreError::backend(sqlx::Error::RowNotFound)),
        }
    }

    /// A promotion read under the lock, so its state cannot change before the commit.
    pub async fn promotion(&mut self, id: i64) -> Result<Option<Promotion>, StoreError> {
        let sql = format!("SELECT {PROMOTION_COLUMNS} FROM promotions WHERE id = $1");
        self.fetch_optional(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id))
            .await
    }

    /// The pending promotion of a model to an environment, read under the lock.
    pub async fn pending_promotion(
        &mut self,
        business_unit: &str,
        model: &str,
        environment: &str,
    ) -> Result<Option<i64>, StoreError> {
        let query = sqlx::query_as::<_, (i64,)>(
            "SELECT id FROM promotions WHERE business_unit = $1 AND model = $2 AND environment = $3 AND state = 'pending' ORDER BY id LIMIT 1",
        )
        .bind(business_unit)
        .bind(model)
        .bind(environment);
        Ok(self.fetch_optional(query).await?.map(|(id,)| id))
    }

    /// Moves a pending promotion to `state` (`rejected`, `withdrawn`, `expired`); false when
    /// it was no longer pending.
    pub async fn close_promotion(
        &mut self,
        id: i64,
        state: &str,
        by: &str,
        at: &str,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let query = sqlx::query(
            "UPDATE promotions SET state = $1, closed_by = $2, closed_at = $3, close_reason = $4 WHERE id = $5 AND state = 'pending'",
        )
        .bind(state)
        .bind(by)
        .bind(at)
        .bind(reason)
        .bind(id);
        self.exec(query, String::new).await.map(|n| n == 1)
    }

    /// Marks a pending promotion applied with the evaluation that let it through; false
    /// when it was no longer pending.
    pub async fn apply_promotion(
        &mut self,
        id: i64,
        gates: &str,
        previous_digest: Option<&str>,
        by: &str,
        at: &str,
    ) -> Result<bool, StoreError> {
        let query = sqlx::query(
            "UPDATE promotions SET state = 'applied', gates = $1, previous_digest = $2, closed_by = $3, closed_at = $4 WHERE id = $5 AND state = 'pending'",
        )
        .bind(gates)
        .bind(previous_digest)
        .bind(by)
        .bind(at)
        .bind(id);
        self.exec(query, String::new).await.map(|n| n == 1)
    }

    /// Records the review of an emergency promotion; false when there is nothing to review
    /// (not an emergency, not applied, or reviewed already).
    pub async fn review_promotion(
        &mut self,
        id: i64,
        by: &str,
        at: &str,
        comment: &str,
    ) -> Result<bool, StoreError> {
        let query = sqlx::query(
            "UPDATE promotions SET reviewed_by = $1, reviewed_at = $2, review_comment = $3 WHERE id = $4 AND emergency_reason IS NOT NULL AND state = 'applied' AND reviewed_by IS NULL",
        )
        .bind(by)
        .bind(at)
        .bind(comment)
        .bind(id);
        self.exec(query, String::new).await.map(|n| n == 1)
    }

    /// Records an approval; false (and nothing written) when the approver already approved
    /// this promotion. The head lock serialises approvals, and the unique key backs it up.
    pub async fn insert_promotion_approval(
        &mut self,
        approval: &PromotionApproval,
    ) -> Result<bool, StoreError> {
        let existing = sqlx::query_as::<_, (i64,)>(
            "SELECT id FROM promotion_approvals WHERE promotion_id = $1 AND approver = $2",
        )
        .bind(approval.promotion_id)
        .bind(&approval.approver);
        if self.fetch_optional(existing).await?.is_some() {
            return Ok(false);
        }
        let seq = self.next_seq() as i64;
        let query = sqlx::query(
            "INSERT INTO promotion_approvals (promotion_id, approver, token_issuer, roles, checklist, mitigated, accepts_breaking_changes, comment, created_at, audit_seq)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(approval.promotion_id)
        .bind(&approval.approver)
        .bind(&approval.token_issuer)
        .bind(&approval.roles)
        .bind(&approval.checklist)
        .bind(&approval.mitigated)
        .bind(approval.accepts_breaking_changes)
        .bind(&approval.comment)
        .bind(&approval.created_at)
        .bind(seq);
        self.exec(query, String::new).await.map(|n| n == 1)
    }

    pub async fn insert_drift_report(
        &mut self,
        digest: &str,
        report: &str,
        by: &str,
        at: &str,
    ) -> Result<(), StoreError> {
        let seq = self.next_seq() as i64;
        let query = sqlx::query(
            "INSERT INTO drift_reports (digest, report, attached_by, attached_at, audit_seq) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(digest)
        .bind(report)
        .bind(by)
        .bind(at)
        .bind(seq);
        self.exec(query, String::new).await.map(drop)
    }

    /// Calendar windows not deleted, read under the lock (so reads need no second connection).
    pub async fn calendar_windows(&mut self) -> Result<Vec<CalendarWindow>, StoreError> {
        let query = sqlx::query_as::<_, CalendarWindow>(
            "SELECT id, name, kind, dtstart, duration_seconds, rrule, environments, business_units, reason, source, created_by, created_at FROM calendar_windows WHERE deleted_at IS NULL ORDER BY id",
        );
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, query.fetch_all(&mut *self.tx)).await {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(err)) => Err(StoreError::backend(err)),
            Err(_) => Err(StoreError::Timeout(timeout)),
        }
    }

    /// Writes an approval anew when the approver changed it (checklist, mitigations,
    /// acceptance, comment); false when it is the same as recorded.
    pub async fn amend_promotion_approval(
        &mut self,
        approval: &PromotionApproval,
    ) -> Result<bool, StoreError> {
        let seq = self.next_seq() as i64;
        let query = sqlx::query(
            "UPDATE promotion_approvals SET token_issuer = $1, roles = $2, checklist = $3, mitigated = $4, accepts_breaking_changes = $5, comment = $6, created_at = $7, audit_seq = $8
             WHERE promotion_id = $9 AND approver = $10 AND NOT (checklist = $3 AND mitigated = $4 AND accepts_breaking_changes = $5 AND comment = $6)",
        )
        .bind(&approval.token_issuer)
        .bind(&approval.roles)
        .bind(&approval.checklist)
        .bind(&approval.mitigated)
        .bind(approval.accepts_breaking_changes)
        .bind(&approval.comment)
        .bind(&approval.created_at)
        .bind(seq)
        .bind(approval.promotion_id)
        .bind(&approval.approver);
        self.exec(query, String::new).await.map(|n| n == 1)
    }

    /// Stores a webhook; its cursor starts at the current head (only later entries are sent).
    pub async fn insert_webhook(&mut self, webhook: &Webhook) -> Result<i64, StoreError> {
        let query = sqlx::query_as::<_, (i64,)>(
            "INSERT INTO webhooks (name, url, secret, events, cursor_seq, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(&webhook.name)
        .bind(&webhook.url)
        .bind(&webhook.secret)
        .bind(&webhook.events)
        .bind(self.head_seq as i64)
        .bind(&webhook.created_by)
        .bind(&webhook.created_at);
        match self.fetch_optional(query).await? {
            Some((id,)) => Ok(id),
            None => Err(StoreError::backend(sqlx::Error::RowNotFound)),
        }
    }

    /// Marks a webhook deleted; false when there is no such live webhook.
    pub async fn delete_webhook(
        &mut self,
        id: i64,
        by: &str,
        at: &str,
    ) -> Result<bool, StoreError> {
        let query = sqlx::query(
            "UPDATE webhooks SET deleted_by = $1, deleted_at = $2 WHERE id = $3 AND deleted_at IS NULL",
        )
        .bind(by)
        .bind(at)
        .bind(id);
        self.exec(query, String::new).await.map(|n| n == 1)
    }

    /// Records deliveries and moves the webhook's cursor from `from` to `to`; false (nothing
    /// written) when the cursor is no longer at `from` (another replica delivered them).
    pub async fn record_deliveries(
        &mut self,
        webhook_id: i64,
        from: i64,
        to: i64,
        deliveries: &[WebhookDelivery],
    ) -> Result<bool, StoreError> {
        let moved =
            sqlx::query("UPDATE webhooks SET cursor_seq = $1 WHERE id = $2 AND cursor_seq = $3 AND deleted_at IS NULL")
                .bind(to)
                .bind(webhook_id)
                .bind(from);
        if self.exec(moved, String::new).await? != 1 {
            return Ok(false);
        }
        let seq = self.next_seq() as i64;
        for delivery in deliveries {
            let query = sqlx::query(
                "INSERT INTO webhook_deliveries (webhook_id, seq, event_type, outcome, attempts, response_status, error, first_attempt_at, last_attempt_at, audit_seq)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(webhook_id)
            .bind(delivery.seq)
            .bind(&delivery.event_type)
            .bind(&delivery.outcome)
            .bind(delivery.attempts)
            .bind(delivery.response_status)
            .bind(&delivery.error)
            .bind(&delivery.first_attempt_at)
            .bind(&delivery.last_attempt_at)
            .bind(seq);
            self.exec(query, String::new).await?;
        }
        Ok(true)
    }

    /// Records a routing rule; `audit_seq` is this transaction's event.
    pub async fn insert_routing_rule(&mut self, rule: &RoutingRuleRow) -> Result<(), StoreError> {
        let seq = self.next_seq() as i64;
        let query = sqlx::query(
            "INSERT INTO routing_rules (business_unit, model, environment, canary_digest, canary_weight_bp, sticky_header, shadow_digest, shadow_share_bp, reason, set_by, set_at, audit_seq)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&rule.business_unit)
        .bind(&rule.model)
        .bind(&rule.environment)
        .bind(&rule.canary_digest)
        .bind(rule.canary_weight_bp)
        .bind(&rule.sticky_header)
        .bind(&rule.shadow_digest)
        .bind(rule.shadow_share_bp)
        .bind(&rule.reason)
        .bind(&rule.set_by)
        .bind(&rule.set_at)
        .bind(seq);
        self.exec(query, String::new).await.map(drop)
    }

    /// Records a flag's new state; `audit_seq` is this transaction's event.
    pub async fn insert_flag(&mut self, flag: &FlagRow) -> Result<(), StoreError> {
        let seq = self.next_seq() as i64;
        let query = sqlx::query(
            "INSERT INTO feature_flags (business_unit, model, environment, flag, enabled, fallback_digest, reason, set_by, set_at, audit_seq)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&flag.business_unit)
        .bind(&flag.model)
        .bind(&flag.environment)
        .bind(&flag.flag)
        .bind(flag.enabled)
        .bind(&flag.fallback_digest)
        .bind(&flag.reason)
        .bind(&flag.set_by)
        .bind(&flag.set_at)
        .bind(seq);
        self.exec(query, String::new).await.map(drop)
    }
}
