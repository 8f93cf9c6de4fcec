//! `wrapd bootstrap`: the platform tenant and its first admin client, in one transaction,
//! with the secret printed once.
//!
//! Invariant: there is never a second platform. Running bootstrap again refuses, naming the
//! existing platform; two bootstraps racing are settled by the `tenants_one_platform` unique
//! index (one wins, the other fails and writes nothing). Tested by `api/tests/bootstrap.rs`.

use chrono::Utc;
use serde::Serialize;
use serde_json::json;
use tenants::store;
use tenants::{ApiClient, DisplaySettings, NewClient, NewTenant, Role, TenantKind};
use uuid::Uuid;

use crate::audit::{self, Change};
use crate::cli::BootstrapArgs;
use crate::error::Error;
use crate::settings::Settings;

/// The client id recorded in the audit log for changes made by `wrapd bootstrap`.
pub const BOOTSTRAP_ACTOR: &str = "wrapd-bootstrap";

/// What bootstrap made: printed once, the secret included.
#[derive(Debug, Serialize)]
pub struct Bootstrapped {
    pub tenant_id: Uuid,
    pub client_id: String,
    pub client_secret: String,
}

/// Creates the platform tenant and its first admin client on `db` (migrated).
pub async fn bootstrap(
    db: &sea_orm::DatabaseConnection,
    args: &BootstrapArgs,
) -> Result<Bootstrapped, Error> {
    if let Some(existing) = store::find_platform(db).await.map_err(tenants_error)? {
        return Err(already(existing.id));
    }
    let new = NewTenant {
        kind: TenantKind::Platform,
        name: args.name.clone(),
        display: DisplaySettings {
            display_name: args.display_name.clone(),
            contact_email: args.contact_email.clone(),
        },
    };
    new.validate().map_err(tenants_error)?;
    let books = ledger::Ledger::new(db.clone());
    crate::onboarding::ensure_base_currency(&books)
        .await
        .map_err(problem_error)?;
    let now = Utc::now();
    let txn = ledger::begin_write(db).await?;
    let tenant = crate::onboarding::open_tenant(&txn, &books, &new, now)
        .await
        .map_err(|p| {
            if p.status == 409 {
                // Lost a race with another bootstrap.
                Error::Usage("a platform tenant already exists; bootstrap runs once".to_owned())
            } else {
                problem_error(p)
            }
        })?;
    let (client, secret) = ApiClient::create(
        tenant.id,
        &NewClient {
            name: "bootstrap admin".to_owned(),
            role: Role::Admin,
        },
        now,
    )
    .map_err(tenants_error)?;
    store::insert_client(&txn, &client)
        .await
        .map_err(tenants_error)?;
    let request_id = format!("cli-bootstrap-{}", Uuid::now_v7());
    for change in [
        Change {
            action: "tenant.create",
            target_tenant_id: Some(tenant.id),
            target_type: "tenant",
            target_id: tenant.id.to_string(),
            detail: json!({ "kind": tenant.kind, "name": tenant.name }),
        },
        Change {
            action: "client.create",
            target_tenant_id: Some(tenant.id),
            target_type: "client",
            target_id: client.id.to_string(),
            detail: json!({ "client_id": client.client_id, "name": client.name, "role": client.role }),
        },
    ] {
        audit::record_raw(&txn, tenant.id, BOOTSTRAP_ACTOR, &request_id, &change, now).await?;
    }
    txn.commit().await?;
    Ok(Bootstrapped {
        tenant_id: tenant.id,
        client_id: client.client_id,
        client_secret: secret.expose().to_owned(),
    })
}

fn already(id: Uuid) -> Error {
    Error::Usage(format!(
        "a platform tenant already exists ({id}); bootstrap runs once. Make more admin \
         clients with POST /v1/tenants/{id}/clients"
    ))
}

fn problem_error(p: crate::problem::Problem) -> Error {
    Error::Other(p.to_string())
}

fn tenants_error(e: tenants::TenantsError) -> Error {
    Error::Other(e.to_string())
}

/// `wrapd bootstrap [--json]`: connect, migrate as `serve` would, bootstrap, print.
pub async fn run(settings: &Settings, args: &BootstrapArgs) -> Result<(), Error> {
    let db = crate::db::connect(&settings.database.url).await?;
    crate::db::prepare(&db, &settings.database).await?;
    let made = bootstrap(&db, args).await;
    let _ = db.close().await;
    let made = made?;
    if args.json {
        let line = serde_json::to_string(&made).map_err(|e| Error::Other(e.to_string()))?;
        println!("{line}");
    } else {
        println!("Created the platform tenant and its first admin client.");
        println!("  tenant_id:     {}", made.tenant_id);
        println!("  client_id:     {}", made.client_id);
        println!("  client_secret: {}", made.client_secret);
        println!("The secret is shown only now (only its argon2id hash is stored): keep it safe.");
    }
    Ok(())
}
