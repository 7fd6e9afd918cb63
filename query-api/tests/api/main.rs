//! HTTP-level tests of the query API: the real router on a real port, the projector on the
//! same database (SQLite always, PostgreSQL when reachable), a catalogue seeded through the
//! event store, a real HTTP client.
mod accounts;
mod analytics;
mod checkpoint_feed;
mod compose;
mod consistency;
mod customers;
mod helpers;
mod inventory;
mod nul;
mod orders;
mod products;
mod recommendations;
mod search;
mod shop;
mod view_cache;
