//! The notifier against real peers: its admin API over HTTP, webhook receivers and SMTP
//! servers started by the tests, on SQLite and PostgreSQL.
mod email;
mod smtp;
mod support;
mod webhook_delivery;
mod webhooks_api;
