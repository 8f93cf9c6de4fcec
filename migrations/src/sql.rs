//! Backend-specific spelling of the few things that differ between SQLite and PostgreSQL.

use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, DbErr};

/// Replaces the type placeholders of a DDL template for `backend`:
/// `{uuid}` becomes UUID on PostgreSQL and a 16-byte BLOB on SQLite (how sqlx binds a uuid there).
pub fn render(backend: DbBackend, template: &str) -> String {
    let uuid = match backend {
        DbBackend::Postgres => "UUID",
        _ => "BLOB",
    };
    template.replace("{uuid}", uuid)
}

/// Runs each statement, rendered for the connection's backend, in order.
pub async fn run<C: ConnectionTrait>(db: &C, statements: &[&str]) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    for statement in statements {
        db.execute_unprepared(&render(backend, statement)).await?;
    }
    Ok(())
}
