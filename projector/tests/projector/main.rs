//! The projector against real databases: SQLite always, PostgreSQL when reachable (each
//! test gets its own database). Histories are appended to the event store as domain
//! events; runners are waited for by polling their checkpoints, never by sleeping.
mod bought_together;
mod catalog;
mod committer;
mod customers;
mod inventory;
mod orders;
mod publisher;
mod replay;
mod restart;
mod runners;
mod sales;
mod support;
