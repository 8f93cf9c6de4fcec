//! `wrapd backup --to FILE`: an online, consistent copy of the embedded SQLite database.
//!
//! SQLite's `VACUUM INTO` writes the database as one read transaction sees it, so the copy
//! is consistent while `wrapd serve` and end of day go on writing (WAL mode), and it is a
//! plain database file (no `-wal` beside it) that `wrapd verify --database-url
//! sqlite://FILE` checks and `wrapd serve` opens. It never overwrites: an existing FILE is
//! refused before anything is read, and SQLite itself refuses one that appears meanwhile.
//! PostgreSQL is refused with a pointer to its own tools (pg_dump, base backups with WAL
//! archiving), which docs/OPERATIONS.md describes. Tried by
//! `api/tests/http/operations_cli.rs`.

use std::path::Path;

use sea_orm::ConnectionTrait as _;

use crate::cli::BackupArgs;
use crate::error::Error;
use crate::logging::redact_url;
use crate::settings::DatabaseSettings;

/// Runs the command.
pub async fn run(settings: &DatabaseSettings, args: &BackupArgs) -> Result<(), Error> {
    let url = &settings.url;
    if crate::db::is_postgres(url) {
        return Err(Error::Usage(format!(
            "wrapd backup copies the embedded SQLite database; {} is PostgreSQL: back it up \
             with `pg_dump --format=custom` (restore with pg_restore) or with base backups and \
             WAL archiving for point-in-time recovery (docs/OPERATIONS.md, \"Back up and \
             restore\")",
            redact_url(url)
        )));
    }
    let source = crate::db::sqlite_path(url).ok_or_else(|| {
        Error::Usage(format!(
            "{} is not an SQLite database file (an in-memory database has nothing to back up)",
            redact_url(url)
        ))
    })?;
    check_target(&source, &args.to)?;
    let db = crate::db::connect(url).await?;
    let result = db
        .execute_unprepared(&format!("VACUUM INTO {}", sql_string(&args.to)?))
        .await;
    let _ = db.close().await;
    result.map_err(|e| {
        Error::Other(format!(
            "backup of {} to {} failed: {e}",
            source.display(),
            args.to.display()
        ))
    })?;
    let bytes = std::fs::metadata(&args.to)?.len();
    println!(
        "backed up {} to {} ({bytes} bytes); check it with: wrapd verify --database-url 'sqlite://{}'",
        source.display(),
        args.to.display(),
        args.to.display()
    );
    Ok(())
}

/// The source must exist (connecting would create an empty one) and the target must not.
fn check_target(source: &Path, target: &Path) -> Result<(), Error> {
    if !source.is_file() {
        return Err(Error::Usage(format!(
            "there is no database at {} to back up",
            source.display()
        )));
    }
    if target.exists() {
        return Err(Error::Usage(format!(
            "{} exists already; a backup never overwrites a file: name a new one",
            target.display()
        )));
    }
    Ok(())
}

/// `path` as an SQL string literal (quotes doubled).
fn sql_string(path: &Path) -> Result<String, Error> {
    let text = path
        .to_str()
        .ok_or_else(|| Error::Usage(format!("{} is not a UTF-8 path", path.display())))?;
    Ok(format!("'{}'", text.replace('\'', "''")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_quoted_as_one_sql_string() {
        assert_eq!(
            sql_string(Path::new("/tmp/it's.db")).unwrap(),
            "'/tmp/it''s.db'"
        );
    }

    #[test]
    fn an_existing_target_or_a_missing_source_is_refused() {
        let dir = std::env::temp_dir().join(format!("wrapd-backup-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let source = dir.join("wrap.db");
        let target = dir.join("copy.db");
        let err = check_target(&source, &target).unwrap_err().to_string();
        assert!(err.contains("no database at"), "{err}");
        std::fs::write(&source, b"").unwrap();
        check_target(&source, &target).unwrap();
        std::fs::write(&target, b"").unwrap();
        let err = check_target(&source, &target).unwrap_err().to_string();
        assert!(err.contains("never overwrites"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
