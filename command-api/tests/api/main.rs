//! HTTP-level tests of the command API: the real app on a real port, against SQLite and
//! PostgreSQL (each test gets its own database), driven with a real HTTP client.
mod accounts;
mod auth;
mod cart_store;
mod carts;
mod helpers;
mod idempotency;
mod inventory;
mod nul;
mod orders;
mod password_reset;
mod products;
mod profile;
mod rate_limits;
mod revocations;
