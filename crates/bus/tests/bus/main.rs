//! The bus against real services: NATS JetStream (each test on a stream and subject
//! namespace of its own; a server of its own where it is stopped), and the in-process
//! carrier over SQLite and PostgreSQL (a database per test). No sleeps: conditions are
//! polled with a deadline.
mod in_process;
mod mapper;
mod nats;
mod support;
