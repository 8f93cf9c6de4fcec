//! Backend-specific spelling of the few things that differ between SQLite and PostgreSQL.

use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, DbErr};

/// Replaces the placeholders of a DDL template for `backend`:
/// * `{uuid}`: UUID on PostgreSQL, a 16-byte BLOB on SQLite (how sqlx binds a uuid there);
/// * `{hot_updates}`: on PostgreSQL, leave a fifth of each page free so that updates of
///   unindexed columns (balances) stay on the page (HOT) instead of touching every index.
pub fn render(backend: DbBackend, template: &str) -> String {
    let (uuid, hot) = match backend {
        DbBackend::Postgres => ("UUID", " WITH (fillfactor = 80)"),
        _ => ("BLOB", ""),
    };
    template
        .replace("{uuid}", uuid)
        .replace("{hot_updates}", hot)
}

/// Runs each statement (fixed or built), rendered for the connection's backend, in order.
pub async fn run<C: ConnectionTrait, S: AsRef<str>>(db: &C, statements: &[S]) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    for statement in statements {
        db.execute_unprepared(&render(backend, statement.as_ref()))
            .await?;
    }
    Ok(())
}
