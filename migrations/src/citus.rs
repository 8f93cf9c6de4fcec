//! Sharding by tenant on Citus (deploy/SCALING.md).
//!
//! The setting that says a database is Citus is the database's own: the `citus` extension is
//! installed in it (`CREATE EXTENSION citus`, which a Citus cluster needs anyway). On such a
//! database [`distribute`] makes every table of the public schema either
//! * a reference table (a copy on every node) or a local table (the coordinator's only), as
//!   declared in `migrations/citus/tables.txt`, the one list of them; or
//! * a table distributed by `tenant_id` and co-located with `ledger_books`, so that a tenant's
//!   rows of every table live on one shard and one tenant's work is one node's work.
//!
//! The rules that make this possible (keys and foreign keys carry `tenant_id`) are checked on
//! plain PostgreSQL by `.ci/citus-rules.sh`. On SQLite and plain PostgreSQL nothing here runs.

use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};

/// `migrations/citus/tables.txt`: the tables not distributed by tenant.
pub const TABLES: &str = include_str!("../citus/tables.txt");

/// The table every distributed table is co-located with: one row per tenant, the first lock.
pub const ANCHOR: &str = "ledger_books";

/// How a table is placed on the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// A copy on every node.
    Reference,
    /// On the coordinator only.
    Local,
    /// Sharded by `tenant_id`, co-located with [`ANCHOR`].
    Tenant,
}

/// The placement of `table` per [`TABLES`].
pub fn placement(table: &str) -> Placement {
    for line in TABLES.lines() {
        let line = line.split('#').next().unwrap_or_default();
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("reference"), Some(name)) if name == table => return Placement::Reference,
            (Some("local"), Some(name)) if name == table => return Placement::Local,
            _ => {}
        }
    }
    Placement::Tenant
}

/// Whether `db` is a Citus database (PostgreSQL with the `citus` extension installed).
pub async fn is_citus<C: ConnectionTrait>(db: &C) -> Result<bool, DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(false);
    }
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) FROM pg_extension WHERE extname = 'citus'",
        ))
        .await?;
    Ok(row
        .map(|r| r.try_get_by_index::<i64>(0))
        .transpose()?
        .unwrap_or(0)
        > 0)
}

async fn strings<C: ConnectionTrait>(db: &C, sql: &str) -> Result<Vec<(String, String)>, DbErr> {
    let rows = db
        .query_all_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get_by_index(0)?, r.try_get_by_index(1)?)))
        .collect()
}

/// Distributes every table of the public schema that is not a Citus table yet, in the caller's
/// transaction. Returns the statements run, for the log.
///
/// The foreign keys between those tables are dropped first and put back last, unchanged:
/// Citus places a table only if every table its foreign keys connect it to is placed
/// compatibly already, and converts the local tables of the graph on the way, which fails
/// half-way through a schema like ours (a reference table's children reach distributed ones).
/// Put back, each is checked by Citus: distributed to reference, or distributed to
/// distributed on tenant_id (`.ci/citus-rules.sh` checks the same on plain PostgreSQL).
pub async fn distribute<C: ConnectionTrait>(db: &C) -> Result<Vec<String>, DbErr> {
    // Sequential: a transaction that creates shards of tables with foreign keys to reference
    // tables must use one connection per node (Citus refuses the parallel mode there).
    // Triggers: the journal's and the catalogue's immutability triggers run on the shards; they
    // read and write nothing but refuse the change of the row they fire for, which is the
    // cross-shard access Citus' "unsafe" warns against not doing.
    let mut run = vec![
        "SET LOCAL citus.multi_shard_modify_mode TO 'sequential'".to_owned(),
        "SET LOCAL citus.enable_unsafe_triggers TO on".to_owned(),
    ];
    let tables: Vec<String> = strings(
        db,
        "SELECT c.relname::text, '' FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') \
         AND NOT EXISTS (SELECT 1 FROM pg_dist_partition p WHERE p.logicalrelid = c.oid) \
         ORDER BY c.relname",
    )
    .await?
    .into_iter()
    .map(|(t, _)| t)
    .collect();
    let keys = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT conrelid::regclass::text, conname::text, pg_get_constraintdef(oid), \
             confrelid::regclass::text \
             FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace \
             ORDER BY 1, 2",
        ))
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.try_get_by_index::<String>(0)?,
                r.try_get_by_index::<String>(1)?,
                r.try_get_by_index::<String>(2)?,
                r.try_get_by_index::<String>(3)?,
            ))
        })
        .collect::<Result<Vec<_>, DbErr>>()?
        .into_iter()
        // Only the keys that touch a table to place: the others stay as they are.
        .filter(|(child, _, _, parent)| tables.contains(child) || tables.contains(parent))
        .map(|(child, name, definition, _)| (child, name, definition))
        .collect::<Vec<_>>();
    for (table, name, _) in &keys {
        run.push(format!("ALTER TABLE {table} DROP CONSTRAINT {name}"));
    }
    let anchored = strings(
        db,
        &format!(
            "SELECT count(*)::text, '' FROM pg_dist_partition \
             WHERE logicalrelid = to_regclass('{ANCHOR}')"
        ),
    )
    .await?
    .first()
    .is_some_and(|(n, _)| n != "0");
    // The anchor first: it opens the co-location group the others join.
    let order = tables
        .iter()
        .filter(|t| t.as_str() == ANCHOR)
        .chain(tables.iter().filter(|t| t.as_str() != ANCHOR));
    for table in order {
        run.push(match placement(table) {
            Placement::Local => continue,
            Placement::Reference => format!("SELECT create_reference_table('{table}')"),
            Placement::Tenant if table == ANCHOR && !anchored => format!(
                "SELECT create_distributed_table('{table}', 'tenant_id', colocate_with => 'none')"
            ),
            Placement::Tenant => format!(
                "SELECT create_distributed_table('{table}', 'tenant_id', \
                 colocate_with => '{ANCHOR}')"
            ),
        });
    }
    for (table, name, definition) in &keys {
        run.push(format!(
            "ALTER TABLE {table} ADD CONSTRAINT {name} {definition}"
        ));
    }
    // For every later session of this database: a transaction's statements that modify many
    // shards go over one connection per worker, so that a later statement of the same
    // transaction on one tenant's shard can use the connection that modified it. With the
    // default (parallel), end of day's `UPDATE … WHERE business_date = …` followed by one
    // tenant's read of the same table fails with "cannot perform query with placements that
    // were modified over multiple connections" (found by `wrapd demo` on the cluster).
    run.push(
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET citus.multi_shard_modify_mode \
         TO %L', current_database(), 'sequential'); END $$"
            .to_owned(),
    );
    for statement in &run {
        db.execute_unprepared(statement).await?;
    }
    Ok(run)
}

/// Turns every Citus table of the public schema back into a plain local table, but for those
/// with an identity column (`audit_log`): Citus cannot undistribute them ("cannot complete
/// operation on a table with identity column"), so they stay reference tables, which the
/// schema's `down` migrations drop or keep like any other table and [`distribute`] skips.
pub async fn undistribute<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    db.execute_unprepared("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'")
        .await?;
    db.execute_unprepared(
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I RESET citus.multi_shard_modify_mode', \
         current_database()); END $$",
    )
    .await?;
    // Each call also undistributes the tables its foreign keys connect, so ask again each time.
    loop {
        let left = strings(
            db,
            "SELECT logicalrelid::regclass::text, '' FROM pg_dist_partition p \
             JOIN pg_class c ON c.oid = p.logicalrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' \
             AND NOT EXISTS (SELECT 1 FROM pg_attribute a \
                 WHERE a.attrelid = c.oid AND a.attidentity <> '') LIMIT 1",
        )
        .await?;
        let Some((table, _)) = left.first() else {
            return Ok(());
        };
        db.execute_unprepared(&format!(
            "SELECT undistribute_table('{table}', cascade_via_foreign_keys => true)"
        ))
        .await?;
    }
}
