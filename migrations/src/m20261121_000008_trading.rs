//! The trading steps of end of day: what rebalancing decided per wrap, the orders, how they
//! were netted per instrument, the block orders sent to a venue, their fills, and how each
//! fill was allocated back to the wraps.
//!
//! Rules written into the schema:
//! * every amount is BIGINT minor units of the instrument's currency and every unit count
//!   BIGINT minor units of the instrument's unit scale; prices are exact decimal TEXT (the
//!   instrument's price per quote unit, as read on the day);
//! * a buy order is by amount, a sell order by units (`CHECK`), and a skipped order says why;
//! * a wrap has one decision per date, an instrument one netting row per distributor and
//!   date, an order one allocation; rows point at their wrap and order through composite
//!   keys `(tenant_id, …)`.

use sea_orm_migration::prelude::*;

use crate::sql;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] = &[
    // Per wrap: the model version it was last traded to and when drift, calendar or model
    // rebalancing last happened (for the cooldown).
    "CREATE TABLE wrap_trading (
        tenant_id {uuid} NOT NULL,
        wrap_id {uuid} NOT NULL,
        model_version INTEGER NOT NULL CHECK (model_version >= 1),
        traded_on DATE NOT NULL,
        rebalanced_on DATE NULL,
        PRIMARY KEY (tenant_id, wrap_id),
        FOREIGN KEY (tenant_id, wrap_id) REFERENCES wraps (tenant_id, id)
    )",
    "CREATE TABLE rebalance_decisions (
        tenant_id {uuid} NOT NULL,
        business_date DATE NOT NULL,
        wrap_id {uuid} NOT NULL,
        trigger TEXT NOT NULL CHECK (trigger IN ('cash', 'withdrawal', 'switch', 'close',
            'liquidation', 'model_change', 'calendar', 'drift', 'none')),
        model_version INTEGER NULL,
        nav BIGINT NOT NULL,
        cash BIGINT NOT NULL,
        cash_reserve BIGINT NOT NULL CHECK (cash_reserve >= 0),
        orders INTEGER NOT NULL CHECK (orders >= 0),
        skipped INTEGER NOT NULL CHECK (skipped >= 0),
        movement_ids TEXT NOT NULL,
        note TEXT NULL CHECK (length(note) BETWEEN 1 AND 500),
        PRIMARY KEY (tenant_id, business_date, wrap_id),
        FOREIGN KEY (tenant_id, wrap_id) REFERENCES wraps (tenant_id, id)
    )",
    "CREATE TABLE trade_orders (
        tenant_id {uuid} NOT NULL,
        id {uuid} NOT NULL,
        business_date DATE NOT NULL,
        wrap_id {uuid} NOT NULL,
        instrument TEXT NOT NULL REFERENCES ledger_assets (code),
        side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
        amount BIGINT NULL CHECK (amount > 0),
        units BIGINT NULL CHECK (units > 0),
        status TEXT NOT NULL
            CHECK (status IN ('planned', 'skipped', 'filled', 'partially_filled', 'unfilled')),
        reason TEXT NULL CHECK (length(reason) BETWEEN 1 AND 500),
        PRIMARY KEY (tenant_id, id),
        FOREIGN KEY (tenant_id, wrap_id) REFERENCES wraps (tenant_id, id),
        CHECK ((side = 'buy') = (amount IS NOT NULL)),
        CHECK ((side = 'sell') = (units IS NOT NULL)),
        CHECK ((status = 'skipped') = (reason IS NOT NULL))
    )",
    "CREATE INDEX trade_orders_by_date ON trade_orders (business_date, tenant_id, instrument)",
    // Per distributor, instrument and date: the day's buys and sells, the part crossed
    // internally at the day's price, and what went out net.
    "CREATE TABLE trade_netting (
        tenant_id {uuid} NOT NULL,
        business_date DATE NOT NULL,
        instrument TEXT NOT NULL REFERENCES ledger_assets (code),
        price TEXT NOT NULL,
        price_date DATE NOT NULL,
        buy_amount BIGINT NOT NULL CHECK (buy_amount >= 0),
        sell_units BIGINT NOT NULL CHECK (sell_units >= 0),
        crossed_units BIGINT NOT NULL CHECK (crossed_units >= 0),
        crossed_amount BIGINT NOT NULL CHECK (crossed_amount >= 0),
        net_side TEXT NULL CHECK (net_side IN ('buy', 'sell')),
        PRIMARY KEY (tenant_id, business_date, instrument)
    )",
    "CREATE TABLE block_orders (
        tenant_id {uuid} NOT NULL,
        id {uuid} NOT NULL,
        business_date DATE NOT NULL,
        instrument TEXT NOT NULL REFERENCES ledger_assets (code),
        side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
        amount BIGINT NULL CHECK (amount > 0),
        units BIGINT NULL CHECK (units > 0),
        price TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('open', 'filled', 'partially_filled', 'unfilled')),
        venue TEXT NULL,
        PRIMARY KEY (tenant_id, id),
        UNIQUE (tenant_id, business_date, instrument),
        CHECK ((side = 'buy') = (amount IS NOT NULL)),
        CHECK ((side = 'sell') = (units IS NOT NULL))
    )",
    "CREATE INDEX block_orders_by_date ON block_orders (business_date, status)",
    "CREATE TABLE trade_fills (
        tenant_id {uuid} NOT NULL,
        id {uuid} NOT NULL,
        block_order_id {uuid} NOT NULL,
        business_date DATE NOT NULL,
        units BIGINT NOT NULL CHECK (units >= 0),
        amount BIGINT NOT NULL CHECK (amount >= 0),
        venue TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (tenant_id, id),
        FOREIGN KEY (tenant_id, block_order_id) REFERENCES block_orders (tenant_id, id)
    )",
    "CREATE INDEX trade_fills_by_block ON trade_fills (tenant_id, block_order_id)",
    // What each order got: units and cash, crossed and from the venue together.
    "CREATE TABLE trade_allocations (
        tenant_id {uuid} NOT NULL,
        order_id {uuid} NOT NULL,
        business_date DATE NOT NULL,
        wrap_id {uuid} NOT NULL,
        units BIGINT NOT NULL CHECK (units >= 0),
        amount BIGINT NOT NULL CHECK (amount >= 0),
        status TEXT NOT NULL CHECK (status IN ('filled', 'partially_filled', 'unfilled', 'residual')),
        PRIMARY KEY (tenant_id, order_id),
        FOREIGN KEY (tenant_id, order_id) REFERENCES trade_orders (tenant_id, id)
    )",
];

const DOWN: &[&str] = &[
    "DROP TABLE trade_allocations",
    "DROP TABLE trade_fills",
    "DROP TABLE block_orders",
    "DROP TABLE trade_netting",
    "DROP TABLE trade_orders",
    "DROP TABLE rebalance_decisions",
    "DROP TABLE wrap_trading",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::run(manager.get_connection(), UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::run(manager.get_connection(), DOWN).await
    }
}
