-- Query nodes without an in-process projector learn that a checkpoint moved from a
-- notification on `emporium_checkpoints` instead of reading this table for every request
-- (query-api/src/checkpoint_feed.rs). The payload is empty: a notified node reads the
-- whole table, and PostgreSQL delivers one notification per committing transaction
-- (identical notifications in one transaction are folded), none for a rolled-back one.
CREATE FUNCTION notify_checkpoint_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('emporium_checkpoints', '');
    RETURN NULL;
END
$$;

-- A batch first locks its row with a no-op update (`SET position = position`): only a
-- real move notifies.
CREATE TRIGGER checkpoint_moved
    AFTER UPDATE OF position ON projection_checkpoints
    FOR EACH ROW WHEN (OLD.position IS DISTINCT FROM NEW.position)
    EXECUTE FUNCTION notify_checkpoint_moved();

CREATE TRIGGER checkpoint_added_or_removed
    AFTER INSERT OR DELETE ON projection_checkpoints
    FOR EACH STATEMENT
    EXECUTE FUNCTION notify_checkpoint_moved();
