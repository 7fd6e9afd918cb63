//! Command API: REST commands -> domain decisions -> appended events.
