-- The event log. One row per event; `position` is the global order, (stream_id, version)
-- the per-stream order. Appends are single statements (see crates/eventstore/src/postgres.rs
-- for how readers stay gap-aware while appends stay concurrent).
CREATE SEQUENCE events_position_seq AS bigint;

CREATE TABLE events (
    position        bigint      PRIMARY KEY DEFAULT nextval('events_position_seq'),
    stream_id       text        NOT NULL,
    version         bigint      NOT NULL CHECK (version >= 1),
    event_id        uuid        NOT NULL,
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL,
    payload         jsonb       NOT NULL,
    metadata        jsonb       NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version),
    CONSTRAINT events_event_id_key UNIQUE (event_id)
);

ALTER SEQUENCE events_position_seq OWNED BY events.position;
