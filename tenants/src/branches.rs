//! A distributor's branches: where its customers belong and its advisers work. This module is
//! the only writer of `branches`.
//!
//! Invariants this module enforces (tested by `api/tests/http/branches.rs`):
//! * only a distributor has branches ([`insert_branch`] refuses any other tenant kind);
//! * a code is 1 to [`MAX_CODE_CHARS`] ASCII letters, digits or `-`, unique in the tenant (the
//!   schema's `UNIQUE (tenant_id, code)` holds against races: a taken code is a conflict);
//! * every query names the tenant: another tenant's branch answers [`TenantsError::NotFound`],
//!   exactly like one that does not exist, so a branch id of another distributor can never be
//!   given to a user or a customer ([`require`]).

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, QueryResult, Value};
use serde::Serialize;
use uuid::Uuid;

use crate::error::TenantsError;
use crate::store::{
    Page, check_limit, exec, from_micros, get, is_unique_violation, micros, p, page, query,
};
use crate::tenant::{Tenant, TenantKind, validate_name};

/// Longest branch code.
pub const MAX_CODE_CHARS: usize = 20;

/// A branch of a distributor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Branch {
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// The distributor's own code for it (say its bank branch number), unique in the tenant.
    pub code: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// A new branch of `tenant`, after every rule is checked.
pub fn prepare(
    tenant: &Tenant,
    code: &str,
    name: &str,
    now: DateTime<Utc>,
) -> Result<Branch, TenantsError> {
    if tenant.kind != TenantKind::Distributor {
        return Err(TenantsError::invalid(
            "tenant",
            format!("a {} tenant has no branches", tenant.kind.as_str()),
        ));
    }
    if code.is_empty()
        || code.len() > MAX_CODE_CHARS
        || !code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(TenantsError::invalid(
            "code",
            format!("must be 1 to {MAX_CODE_CHARS} ASCII letters, digits or '-'"),
        ));
    }
    validate_name("name", name)?;
    Ok(Branch {
        id: Uuid::now_v7(),
        tenant_id: tenant.id,
        code: code.to_owned(),
        name: name.to_owned(),
        created_at: crate::to_micros_precision(now),
    })
}

const COLS: &str = "tenant_id, id, code, name, created_at";

fn from_row(row: &QueryResult) -> Result<Branch, TenantsError> {
    Ok(Branch {
        tenant_id: get(row, 0)?,
        id: get(row, 1)?,
        code: get(row, 2)?,
        name: get(row, 3)?,
        created_at: from_micros(get(row, 4)?)?,
    })
}

/// Stores a branch made by [`prepare`]. A taken code is [`TenantsError::Conflict`].
pub async fn insert_branch<C: ConnectionTrait>(
    db: &C,
    branch: &Branch,
) -> Result<(), TenantsError> {
    let b = db.get_database_backend();
    let placeholders: Vec<String> = (1..=5).map(|n| p(b, n)).collect();
    let values: Vec<Value> = vec![
        branch.tenant_id.into(),
        branch.id.into(),
        branch.code.clone().into(),
        branch.name.clone().into(),
        micros(branch.created_at).into(),
    ];
    exec(
        db,
        format!(
            "INSERT INTO branches ({COLS}) VALUES ({})",
            placeholders.join(", ")
        ),
        values,
    )
    .await
    .map_err(|e| match e {
        TenantsError::Db(ref d) if is_unique_violation(d) => TenantsError::Conflict(format!(
            "a branch with code {:?} already exists",
            branch.code
        )),
        other => other,
    })?;
    Ok(())
}

/// Branch `id` of `tenant_id`; another tenant's is [`TenantsError::NotFound`].
pub async fn get_branch<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Branch, TenantsError> {
    let b = db.get_database_backend();
    let rows = query(
        db,
        format!(
            "SELECT {COLS} FROM branches WHERE tenant_id = {} AND id = {}",
            p(b, 1),
            p(b, 2)
        ),
        vec![tenant_id.into(), id.into()],
    )
    .await?;
    rows.first()
        .map(from_row)
        .transpose()?
        .ok_or(TenantsError::NotFound)
}

/// [`get_branch`] for a branch id given in a request's `field`: no such branch of the tenant
/// is a 422 naming the field (the request is wrong, not the URL).
pub async fn require<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    field: &'static str,
    id: Uuid,
) -> Result<Branch, TenantsError> {
    match get_branch(db, tenant_id, id).await {
        Err(TenantsError::NotFound) => Err(TenantsError::invalid(
            field,
            format!("no branch {id} of this distributor"),
        )),
        other => other,
    }
}

/// The tenant's branches in id (creation) order, `limit` after the cursor `after`.
pub async fn list_branches<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Page<Branch>, TenantsError> {
    let fetch = check_limit(limit)?;
    let b = db.get_database_backend();
    let rows = query(
        db,
        format!(
            "SELECT {COLS} FROM branches WHERE tenant_id = {} AND id > {} ORDER BY id LIMIT {}",
            p(b, 1),
            p(b, 2),
            p(b, 3)
        ),
        vec![
            tenant_id.into(),
            after.unwrap_or(Uuid::nil()).into(),
            fetch.into(),
        ],
    )
    .await?;
    let items = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    Ok(page(items, limit, |b| b.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::tenant::{DisplaySettings, TenantStatus};

    fn tenant(kind: TenantKind) -> Tenant {
        Tenant {
            id: Uuid::now_v7(),
            kind,
            name: "t".into(),
            status: TenantStatus::Active,
            display: DisplaySettings {
                display_name: "T".into(),
                contact_email: "ops@t.example".into(),
            },
            created_at: Utc::now(),
        }
    }

    #[test]
    fn codes_names_and_tenant_kinds() {
        let now = Utc::now();
        let d = tenant(TenantKind::Distributor);
        assert!(prepare(&d, "001-Tokyo", "Tokyo main", now).is_ok());
        for code in ["", "with space", "東京", &"x".repeat(MAX_CODE_CHARS + 1)] {
            let e = prepare(&d, code, "Tokyo", now).unwrap_err();
            assert!(
                matches!(e, TenantsError::Validation { field: "code", .. }),
                "{code:?}: {e:?}"
            );
        }
        let e = prepare(&d, "001", " Tokyo", now).unwrap_err();
        assert!(
            matches!(e, TenantsError::Validation { field: "name", .. }),
            "{e:?}"
        );
        let e = prepare(&tenant(TenantKind::Manager), "001", "Tokyo", now).unwrap_err();
        assert!(
            matches!(
                e,
                TenantsError::Validation {
                    field: "tenant",
                    ..
                }
            ),
            "{e:?}"
        );
    }
}
