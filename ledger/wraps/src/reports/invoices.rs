//! The platform's monthly invoices to distributors ([`Reports::invoices`]), as billing wrote
//! them (`platform_invoices`, `eod/billing.rs`): every distributor's for the platform, its own
//! for a distributor, none for a manager. Tried on both databases by
//! `api/tests/http/eod_year.rs::a_simulated_year_reconciles_every_day`.

use chrono::NaiveDate;
use ledger::sql::{Params, get, query};
use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Period, ReportError, Reports, Viewer};

/// The platform's monthly fee invoiced to a distributor.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Invoice {
    pub distributor_tenant_id: Uuid,
    pub distributor: String,
    /// The month's last day.
    pub period_end: NaiveDate,
    pub currency: String,
    #[schema(value_type = String)]
    pub amount: Decimal,
}

impl Reports<'_> {
    /// The invoices whose month ends in `period` that the viewer may see, by month end and
    /// distributor name.
    pub async fn invoices(
        &self,
        viewer: Viewer,
        Period { from, to }: Period,
    ) -> Result<Vec<Invoice>, ReportError> {
        let db = self.db;
        let mut pa = Params::new(db.get_database_backend());
        // Placeholders are positional on SQLite: push in the order they appear in the text
        // (the scope's used to be pushed first, so on SQLite a distributor saw no invoice).
        let (from_p, to_p) = (pa.push(from), pa.push(to));
        let scope = match viewer {
            Viewer::Platform => "1 = 1".to_owned(),
            Viewer::Distributor(me) | Viewer::Manager(me) => {
                format!("i.tenant_id = {}", pa.push(me))
            }
        };
        let q = format!(
            "SELECT i.tenant_id, t.name, i.period_end, i.currency, i.amount \
             FROM platform_invoices i JOIN tenants t ON t.id = i.tenant_id \
             WHERE i.period_end >= {from_p} AND i.period_end <= {to_p} AND {scope} \
             ORDER BY i.period_end, t.name"
        );
        let mut out = Vec::new();
        for r in query(db, q, pa.values).await? {
            let currency: String = get(&r, 3)?;
            let scale = self.scale(&currency).await?;
            out.push(Invoice {
                distributor_tenant_id: get(&r, 0)?,
                distributor: get(&r, 1)?,
                period_end: get(&r, 2)?,
                amount: ledger::asset::decimal_of(i128::from(get::<i64>(&r, 4)?), scale),
                currency,
            });
        }
        Ok(out)
    }
}
