//! `wrapd migrate up|down|status`: prints what it did on stdout, one line per migration.

use migrations::{Migrator, MigratorTrait};
use sea_orm_migration::MigrationStatus;

use crate::cli::MigrateAction;
use crate::error::Error;
use crate::logging::redact_url;
use crate::settings::DatabaseSettings;

/// Runs one migration command against `settings.url`.
pub async fn run(settings: &DatabaseSettings, action: MigrateAction) -> Result<(), Error> {
    tracing::info!(database = %redact_url(&settings.url), ?action, "migrate");
    let db = crate::db::connect(&settings.url).await?;
    let result = match action {
        MigrateAction::Up => {
            let pending = crate::db::pending_names(&db).await?;
            Migrator::up(&db, None).await?;
            if pending.is_empty() {
                println!("nothing to apply: the schema is up to date");
            }
            for name in pending {
                println!("applied {name}");
            }
            Ok(())
        }
        MigrateAction::Down => {
            let applied: Vec<String> = Migrator::get_migration_with_status_read_only(&db)
                .await?
                .iter()
                .filter(|m| m.status() == MigrationStatus::Applied)
                .map(|m| m.name().to_owned())
                .collect();
            Migrator::down(&db, Some(1)).await?;
            match applied.last() {
                Some(name) => println!("rolled back {name}"),
                None => println!("nothing to roll back: no migration is applied"),
            }
            Ok(())
        }
        MigrateAction::Status => {
            for m in Migrator::get_migration_with_status_read_only(&db).await? {
                let status = match m.status() {
                    MigrationStatus::Applied => "applied",
                    MigrationStatus::Pending => "pending",
                };
                println!("{:<8} {}", status, m.name());
            }
            Ok(())
        }
    };
    let _ = db.close().await;
    result
}
