//! The tenants store on a fresh SQLite file, and on PostgreSQL when `WRAP_TEST_POSTGRES_URL`
//! is set (a fresh database per test from the `testing` crate, dropped afterwards).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, Utc};
use migrations::{Migrator, MigratorTrait};
use sea_orm::ConnectionTrait;
use tenants::store;
use tenants::{
    Action, DisplaySettings, NewClient, NewTenant, Principal, Role, TenantKind, TenantStatus,
    TenantsError,
};
use uuid::Uuid;

/// A fresh, migrated database on `backend`, connected as the platform connects.
async fn fresh(backend: &'static str) -> testing::TestDb {
    testing::fresh(backend, ledger::connect).await
}

fn new_tenant(kind: TenantKind, name: &str) -> NewTenant {
    NewTenant {
        kind,
        name: name.into(),
        display: DisplaySettings {
            display_name: format!("{name} (display)"),
            contact_email: "ops@example.com".into(),
        },
    }
}

fn new_client(role: Role) -> NewClient {
    NewClient {
        name: format!("{role:?} job"),
        role,
    }
}

#[tokio::test]
async fn tenants_are_created_listed_and_suspended() {
    for backend in testing::backends() {
        let tdb = fresh(backend).await;
        let db = &tdb.db;
        eprintln!("-- on {}", tdb.name);
        let now = Utc::now();

        let platform = store::create_tenant(db, &new_tenant(TenantKind::Platform, "Wrap"), now)
            .await
            .unwrap();
        assert_eq!(platform.status, TenantStatus::Active);
        assert_eq!(store::get_tenant(db, platform.id).await.unwrap(), platform);
        assert_eq!(
            store::find_platform(db).await.unwrap().unwrap().id,
            platform.id
        );

        // At most one platform, checked by the store...
        let second =
            store::create_tenant(db, &new_tenant(TenantKind::Platform, "Other"), now).await;
        assert!(
            matches!(second, Err(TenantsError::Conflict(_))),
            "{second:?}"
        );
        // ...and by the schema, even if the check is bypassed.
        let bypass = db
            .execute_unprepared(&format!(
                "INSERT INTO tenants (id, kind, name, status, display_name, contact_email, \
                 created_at, updated_at) VALUES ({}, 'platform', 'Sneaky', 'active', 'S', \
                 's@x.io', 0, 0)",
                match db.get_database_backend() {
                    sea_orm::DbBackend::Postgres => format!("'{}'", Uuid::now_v7()),
                    _ => format!("X'{}'", Uuid::now_v7().simple()),
                }
            ))
            .await;
        assert!(bypass.is_err(), "the schema let a second platform in");

        // Duplicate names and invalid input.
        let dup = store::create_tenant(db, &new_tenant(TenantKind::Manager, "Wrap"), now).await;
        assert!(matches!(dup, Err(TenantsError::Conflict(_))), "{dup:?}");
        let mut bad = new_tenant(TenantKind::Manager, "Bad");
        bad.display.contact_email = "nobody".into();
        assert!(matches!(
            store::create_tenant(db, &bad, now).await,
            Err(TenantsError::Validation {
                field: "contact_email",
                ..
            })
        ));

        let mut ids = vec![platform.id];
        for i in 0..5 {
            let t = store::create_tenant(
                db,
                &new_tenant(TenantKind::Distributor, &format!("Bank {i}")),
                now,
            )
            .await
            .unwrap();
            ids.push(t.id);
        }

        // Cursor pagination walks every tenant once, in id order.
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = store::list_tenants(db, cursor, 2).await.unwrap();
            assert!(page.items.len() <= 2);
            seen.extend(page.items.iter().map(|t| t.id));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, ids);
        assert!(store::list_tenants(db, None, 0).await.is_err());

        // Suspend and resume; the platform cannot be suspended.
        let bank = ids[1];
        let s = store::set_status(db, bank, TenantStatus::Suspended, now)
            .await
            .unwrap();
        assert_eq!(s.status, TenantStatus::Suspended);
        assert_eq!(
            store::get_tenant(db, bank).await.unwrap().status,
            TenantStatus::Suspended
        );
        store::set_status(db, bank, TenantStatus::Active, now)
            .await
            .unwrap();
        assert!(matches!(
            store::set_status(db, platform.id, TenantStatus::Suspended, now).await,
            Err(TenantsError::Conflict(_))
        ));
        assert!(matches!(
            store::set_status(db, Uuid::now_v7(), TenantStatus::Active, now).await,
            Err(TenantsError::NotFound)
        ));
        assert!(matches!(
            store::get_tenant(db, Uuid::now_v7()).await,
            Err(TenantsError::NotFound)
        ));
    }
}

#[tokio::test]
async fn clients_are_scoped_by_tenant_and_authenticate() {
    for backend in testing::backends() {
        let tdb = fresh(backend).await;
        let db = &tdb.db;
        eprintln!("-- on {}", tdb.name);
        let now = Utc::now();

        let bank = store::create_tenant(db, &new_tenant(TenantKind::Distributor, "Bank"), now)
            .await
            .unwrap();
        let manager = store::create_tenant(db, &new_tenant(TenantKind::Manager, "AM"), now)
            .await
            .unwrap();

        let (client, secret) = store::create_client(db, bank.id, &new_client(Role::Operator), now)
            .await
            .unwrap();
        assert!(client.client_id.starts_with("cli_"));
        let (other, _) = store::create_client(db, manager.id, &new_client(Role::Admin), now)
            .await
            .unwrap();

        // Read back exactly, by tenant; another tenant's id is "not found".
        assert_eq!(
            store::get_client(db, bank.id, client.id).await.unwrap(),
            client
        );
        assert!(matches!(
            store::get_client(db, bank.id, other.id).await,
            Err(TenantsError::NotFound)
        ));
        assert!(matches!(
            store::revoke_client(db, bank.id, other.id, now).await,
            Err(TenantsError::NotFound)
        ));
        assert!(matches!(
            store::rotate_secret(db, bank.id, other.id, now, Duration::hours(1)).await,
            Err(TenantsError::NotFound)
        ));
        let listed = store::list_clients(db, bank.id, None, 100).await.unwrap();
        assert_eq!(listed.items, vec![client.clone()]);
        assert!(
            store::create_client(db, Uuid::now_v7(), &new_client(Role::Viewer), now)
                .await
                .is_err()
        );

        // Only the hash is stored.
        let raw = db
            .query_all_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT secret_hash FROM tenant_api_clients".to_owned(),
            ))
            .await
            .unwrap();
        for row in raw {
            let h: String = row.try_get_by_index(0).unwrap();
            assert!(h.starts_with("$argon2id$") && !h.contains(secret.expose()));
        }

        // The client credentials grant.
        let p = store::authenticate(db, &client.client_id, secret.expose(), now)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            p,
            Principal {
                tenant_id: bank.id,
                tenant_kind: TenantKind::Distributor,
                client_id: client.client_id.clone(),
                role: Role::Operator,
            }
        );
        assert!(p.authorize(Action::WriteOwnData).is_ok());
        assert!(store::principal_is_live(db, &p).await.unwrap());
        assert!(
            store::authenticate(db, &client.client_id, "wrong", now)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store::authenticate(db, "cli_unknown", secret.expose(), now)
                .await
                .unwrap()
                .is_none()
        );
        // A principal claiming another tenant or a higher role is not live.
        let forged = Principal {
            tenant_id: manager.id,
            ..p.clone()
        };
        assert!(!store::principal_is_live(db, &forged).await.unwrap());
        let promoted = Principal {
            role: Role::Admin,
            ..p.clone()
        };
        assert!(!store::principal_is_live(db, &promoted).await.unwrap());

        // Rotation with overlap: both secrets work until the deadline, then only the new one.
        let (rotated, new_secret) =
            store::rotate_secret(db, bank.id, client.id, now, Duration::minutes(10))
                .await
                .unwrap();
        assert_eq!(
            store::get_client(db, bank.id, client.id).await.unwrap(),
            rotated
        );
        for s in [secret.expose(), new_secret.expose()] {
            assert!(
                store::authenticate(db, &client.client_id, s, now)
                    .await
                    .unwrap()
                    .is_some()
            );
        }
        let later = now + Duration::minutes(10);
        assert!(
            store::authenticate(db, &client.client_id, secret.expose(), later)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store::authenticate(db, &client.client_id, new_secret.expose(), later)
                .await
                .unwrap()
                .is_some()
        );

        // Suspension stops the tenant's clients at once; resuming restores them.
        store::set_status(db, bank.id, TenantStatus::Suspended, now)
            .await
            .unwrap();
        assert!(!store::principal_is_live(db, &p).await.unwrap());
        assert!(
            store::authenticate(db, &client.client_id, new_secret.expose(), now)
                .await
                .unwrap()
                .is_none()
        );
        store::set_status(db, bank.id, TenantStatus::Active, now)
            .await
            .unwrap();
        assert!(store::principal_is_live(db, &p).await.unwrap());

        // Revocation: immediate, sticky, and blocks rotation.
        let revoked = store::revoke_client(db, bank.id, client.id, now)
            .await
            .unwrap();
        let first = revoked.revoked_at.unwrap();
        let again = store::revoke_client(db, bank.id, client.id, now + Duration::hours(1))
            .await
            .unwrap();
        assert_eq!(again.revoked_at, Some(first));
        assert!(!store::principal_is_live(db, &p).await.unwrap());
        assert!(
            store::authenticate(db, &client.client_id, new_secret.expose(), now)
                .await
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            store::rotate_secret(db, bank.id, client.id, now, Duration::hours(1)).await,
            Err(TenantsError::Conflict(_))
        ));

        // Client pagination.
        for _ in 0..4 {
            store::create_client(db, bank.id, &new_client(Role::Viewer), now)
                .await
                .unwrap();
        }
        let first_page = store::list_clients(db, bank.id, None, 3).await.unwrap();
        assert_eq!(first_page.items.len(), 3);
        let rest = store::list_clients(db, bank.id, first_page.next_cursor, 3)
            .await
            .unwrap();
        assert_eq!(rest.items.len(), 2);
        assert!(rest.next_cursor.is_none());
        assert!(rest.items.iter().all(|c| c.tenant_id == bank.id));
    }
}

#[tokio::test]
async fn migration_goes_down_and_up_again() {
    for backend in testing::backends() {
        let tdb = fresh(backend).await;
        eprintln!("-- on {}", tdb.name);
        // Roll back every migration from the tenants one on (it is the second of them).
        let later = Migrator::migrations().len() as u32 - 1;
        Migrator::down(&tdb.db, Some(later)).await.unwrap();
        assert!(store::find_platform(&tdb.db).await.is_err());
        Migrator::up(&tdb.db, None).await.unwrap();
        assert!(store::find_platform(&tdb.db).await.unwrap().is_none());
    }
}
