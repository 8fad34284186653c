//! `Installations` on the shared SQL store: installed locations, GHL token rows with their
//! refresh lease, and single-use nonces, in SQL both SQLite and PostgreSQL accept.
use super::*;

/// The columns `tenant_from_row` reads.
const TENANT_COLUMNS: &str = "location_id, company_id, holded_key, state, updated_at";

/// The columns `token_from_row` reads.
const TOKEN_COLUMNS: &str =
    "owner_type, owner_id, company_id, access, refresh, expires_at, refreshed_at, scopes, version";

/// What every statement on one token row filters by, as `$1` and `$2`.
const TOKEN_ROW: &str = "owner_type = $1 AND owner_id = $2";

fn owner_type(raw: &str) -> Result<OwnerType, StoreError> {
    OwnerType::parse(raw).ok_or_else(|| StoreError::Corrupt(format!("token owner type {raw:?}")))
}

fn tenant_state(raw: &str) -> Result<TenantState, StoreError> {
    TenantState::parse(raw).ok_or_else(|| StoreError::Corrupt(format!("tenant state {raw:?}")))
}

/// Concurrent installs and state changes touch rows in this order, so on a backend with row
/// locks they wait for each other instead of deadlocking (as `enqueue` does for work).
fn sorted<'a, T, K: Ord>(items: &'a [T], key: impl Fn(&'a T) -> K) -> Vec<&'a T> {
    let mut sorted: Vec<&'a T> = items.iter().collect();
    sorted.sort_by_key(|item| key(*item));
    sorted
}

impl<DB> SqlStore<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Decode<'q, DB> + Type<DB> + ColumnIndex<DB::Row>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q [u8]>: Encode<'q, DB>,
    for<'q> String: Decode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Decode<'q, DB> + Type<DB>,
{
    fn location_id(row: &DB::Row) -> Result<LocationId, StoreError> {
        LocationId::parse(row.try_get("location_id")?).map_err(corrupt)
    }

    fn tenant_from_row(row: &DB::Row) -> Result<TenantRecord, StoreError> {
        Ok(TenantRecord {
            location_id: Self::location_id(row)?,
            company_id: row.try_get("company_id")?,
            holded_key: row.try_get("holded_key")?,
            state: tenant_state(row.try_get("state")?)?,
            updated_at: time(row.try_get("updated_at")?, "tenants.updated_at")?,
        })
    }

    fn owner_from_row(row: &DB::Row) -> Result<TokenOwner, StoreError> {
        Ok(TokenOwner {
            owner_type: owner_type(row.try_get("owner_type")?)?,
            id: row.try_get("owner_id")?,
        })
    }

    fn token_from_row(row: &DB::Row) -> Result<TokenRecord, StoreError> {
        Ok(TokenRecord {
            owner: Self::owner_from_row(row)?,
            company_id: row.try_get("company_id")?,
            access: row.try_get("access")?,
            refresh: row.try_get("refresh")?,
            expires_at: time(row.try_get("expires_at")?, "tokens.expires_at")?,
            refreshed_at: time(row.try_get("refreshed_at")?, "tokens.refreshed_at")?,
            scopes: row.try_get("scopes")?,
            version: row.try_get("version")?,
        })
    }

    /// A new pair replaces the stored one as a refresh would: one version newer, and any
    /// lease on the old pair is void.
    async fn upsert_token(
        conn: &mut DB::Connection,
        token: &TokenRecord,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO tokens (owner_type, owner_id, company_id, access, refresh, expires_at, refreshed_at, scopes, version)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (owner_type, owner_id) DO UPDATE SET
                company_id = excluded.company_id, access = excluded.access,
                refresh = excluded.refresh, expires_at = excluded.expires_at,
                refreshed_at = excluded.refreshed_at, scopes = excluded.scopes,
                version = tokens.version + 1, lease_until = NULL, lease_token = NULL",
        )
        .bind(token.owner.owner_type.as_str())
        .bind(token.owner.id.as_str())
        .bind(token.company_id.as_deref())
        .bind(token.access.as_slice())
        .bind(token.refresh.as_deref())
        .bind(token.expires_at.timestamp_millis())
        .bind(token.refreshed_at.timestamp_millis())
        .bind(token.scopes.as_str())
        .bind(token.version)
        .execute(conn)
        .await?;
        Ok(())
    }

    /// A re-install resumes a location with the Holded key it already has.
    async fn upsert_tenant(
        conn: &mut DB::Connection,
        location: &InstalledLocation,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO tenants (location_id, company_id, holded_key, state, created_at, updated_at)
             VALUES ($1, $2, NULL, 'awaiting_key', $3, $3)
             ON CONFLICT (location_id) DO UPDATE SET
                company_id = excluded.company_id,
                state = CASE WHEN tenants.holded_key IS NULL THEN 'awaiting_key' ELSE 'active' END,
                updated_at = excluded.updated_at",
        )
        .bind(location.location_id.as_str())
        .bind(location.company_id.as_deref())
        .bind(now)
        .execute(conn)
        .await?;
        Ok(())
    }
}

#[async_trait]
impl<DB> Installations for SqlStore<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Decode<'q, DB> + Type<DB> + ColumnIndex<DB::Row>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q [u8]>: Encode<'q, DB>,
    for<'q> String: Decode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Decode<'q, DB> + Type<DB>,
{
    async fn tenants(&self) -> Result<Vec<TenantRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {TENANT_COLUMNS} FROM tenants ORDER BY location_id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Self::tenant_from_row).collect()
    }

    async fn tenant(&self, location_id: &LocationId) -> Result<Option<TenantRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {TENANT_COLUMNS} FROM tenants WHERE location_id = $1"
        ))
        .bind(location_id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Self::tenant_from_row).transpose()
    }

    async fn install(
        &self,
        locations: &[InstalledLocation],
        tokens: &[TokenRecord],
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        for token in sorted(tokens, |t| {
            (t.owner.owner_type.as_str(), t.owner.id.as_str())
        }) {
            Self::upsert_token(&mut tx, token).await?;
        }
        for location in sorted(locations, |l| &l.location_id) {
            Self::upsert_tenant(&mut tx, location, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn set_holded_key(
        &self,
        location_id: &LocationId,
        sealed_key: &[u8],
    ) -> Result<Option<TenantState>, StoreError> {
        // The update may match nothing (not installed, or a state that needs a re-install
        // first); reading the row back in the same transaction tells which.
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE tenants SET holded_key = $1, state = 'active', updated_at = $2
             WHERE location_id = $3 AND state IN ('active', 'awaiting_key')",
        )
        .bind(sealed_key)
        .bind(now_ms())
        .bind(location_id.as_str())
        .execute(&mut *tx)
        .await?;
        let state: Option<String> = sqlx::query("SELECT state FROM tenants WHERE location_id = $1")
            .bind(location_id.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| row.try_get("state"))
            .transpose()?;
        tx.commit().await?;
        state.as_deref().map(tenant_state).transpose()
    }

    async fn set_tenant_state(
        &self,
        location_ids: &[LocationId],
        state: TenantState,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        for location_id in sorted(location_ids, |id| id) {
            sqlx::query("UPDATE tenants SET state = $1, updated_at = $2 WHERE location_id = $3")
                .bind(state.as_str())
                .bind(now)
                .bind(location_id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn company_locations(&self, company_id: &str) -> Result<Vec<LocationId>, StoreError> {
        let rows = sqlx::query(
            "SELECT location_id FROM tenants WHERE company_id = $1 ORDER BY location_id",
        )
        .bind(company_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Self::location_id).collect()
    }

    async fn uninstall(&self, owner: &TokenOwner) -> Result<Vec<LocationId>, StoreError> {
        // A company takes with it the tokens it minted and the locations they served.
        let (tokens, tenants) = match owner.owner_type {
            OwnerType::Location => (
                "owner_type = 'location' AND owner_id = $1",
                "location_id = $1",
            ),
            OwnerType::Company => (
                "(owner_type = 'company' AND owner_id = $1) OR company_id = $1",
                "company_id = $1",
            ),
        };
        let mut tx = self.pool.begin().await?;
        sqlx::query(&format!("DELETE FROM tokens WHERE {tokens}"))
            .bind(owner.id.as_str())
            .execute(&mut *tx)
            .await?;
        let rows = sqlx::query(&format!(
            "UPDATE tenants SET holded_key = NULL, state = 'uninstalled', updated_at = $2
             WHERE {tenants} RETURNING location_id"
        ))
        .bind(owner.id.as_str())
        .bind(now_ms())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut uninstalled = rows
            .iter()
            .map(Self::location_id)
            .collect::<Result<Vec<_>, _>>()?;
        uninstalled.sort();
        Ok(uninstalled)
    }

    async fn token(&self, owner: &TokenOwner) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE {TOKEN_ROW}"
        ))
        .bind(owner.owner_type.as_str())
        .bind(owner.id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Self::token_from_row).transpose()
    }

    async fn lease_refresh(
        &self,
        owner: &TokenOwner,
        version: i64,
        lease: Duration,
    ) -> Result<Option<RefreshLease>, StoreError> {
        let now = now_ms();
        let lease_token = new_lease_token();
        let leased = sqlx::query(&format!(
            "UPDATE tokens SET lease_until = $3, lease_token = $4
             WHERE {TOKEN_ROW} AND version = $5 AND (lease_until IS NULL OR lease_until < $6)
             RETURNING version"
        ))
        .bind(owner.owner_type.as_str())
        .bind(owner.id.as_str())
        .bind(now + lease.as_millis() as i64)
        .bind(lease_token.as_str())
        .bind(version)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(leased.map(|_| RefreshLease {
            owner: owner.clone(),
            lease_token,
        }))
    }

    async fn complete_refresh(
        &self,
        lease: &RefreshLease,
        access: &[u8],
        refresh: Option<&[u8]>,
        expires_at: DateTime<Utc>,
        scopes: &str,
    ) -> Result<bool, StoreError> {
        // Only the token of a lease still held matches: a lapsed lease that someone else
        // took has been replaced, and one released by a completed refresh is NULL.
        let result = sqlx::query(&format!(
            "UPDATE tokens SET access = $3, refresh = $4, expires_at = $5, refreshed_at = $6,
                scopes = $7, version = version + 1, lease_until = NULL, lease_token = NULL
             WHERE {TOKEN_ROW} AND lease_token = $8"
        ))
        .bind(lease.owner.owner_type.as_str())
        .bind(lease.owner.id.as_str())
        .bind(access)
        .bind(refresh)
        .bind(expires_at.timestamp_millis())
        .bind(now_ms())
        .bind(scopes)
        .bind(lease.lease_token.as_str())
        .execute(&self.pool)
        .await?;
        Ok(DB::rows_affected(&result) == 1)
    }

    async fn abandon_refresh(&self, lease: &RefreshLease) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "UPDATE tokens SET lease_until = NULL, lease_token = NULL
             WHERE {TOKEN_ROW} AND lease_token = $3"
        ))
        .bind(lease.owner.owner_type.as_str())
        .bind(lease.owner.id.as_str())
        .bind(lease.lease_token.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn tokens_due(
        &self,
        expiring_before: DateTime<Utc>,
        refreshed_before: DateTime<Utc>,
    ) -> Result<Vec<TokenOwner>, StoreError> {
        let rows = sqlx::query(
            "SELECT owner_type, owner_id FROM tokens WHERE expires_at < $1 OR refreshed_at < $2
             ORDER BY owner_type, owner_id",
        )
        .bind(expiring_before.timestamp_millis())
        .bind(refreshed_before.timestamp_millis())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Self::owner_from_row).collect()
    }

    async fn consume_nonce(
        &self,
        nonce: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO nonces (nonce, expires_at) VALUES ($1, $2) ON CONFLICT (nonce) DO NOTHING",
        )
        .bind(nonce)
        .bind(expires_at.timestamp_millis())
        .execute(&self.pool)
        .await?;
        Ok(DB::rows_affected(&result) == 1)
    }

    async fn tenant_counts(&self) -> Result<Vec<(TenantState, i64)>, StoreError> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM tenants GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok((tenant_state(row.try_get("state")?)?, row.try_get("n")?)))
            .collect()
    }
}
