//! The schema goes up, down and up again cleanly on every backend, and works after it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use ledger::{Ledger, Side};
use migrations::{Migrator, MigratorTrait};

#[tokio::test]
async fn migrations_go_up_down_and_up_again() {
    for backend in common::backends() {
        let tdb = common::fresh(backend).await; // already up
        let applied = Migrator::get_applied_migrations(&tdb.db).await.unwrap();
        assert_eq!(applied.len(), Migrator::migrations().len(), "on {backend}");
        Migrator::down(&tdb.db, None).await.unwrap();
        assert!(
            Migrator::get_applied_migrations(&tdb.db)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            Migrator::get_pending_migrations(&tdb.db)
                .await
                .unwrap()
                .len()
                == Migrator::migrations().len()
        );
        Migrator::up(&tdb.db, None).await.unwrap();
        let ledger = Ledger::new(tdb.db.clone());
        let book = common::Book::new(&ledger).await;
        let world = book.account("world", "JPY", Side::Credit, false).await;
        let cash = book.account("cash", "JPY", Side::Debit, true).await;
        ledger
            .post_entry(book.transfer("after", world, cash, "JPY", "1"))
            .await
            .unwrap();
        assert_eq!(book.posted(cash).await, common::dec("1"));
    }
}
