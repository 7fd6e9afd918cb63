-- A checkpoint that moves forward says where to in its notification (`name=position`), so a
-- split query node applies it without reading `projection_checkpoints` again
-- (query-api/src/checkpoint_feed.rs): under load those reads were one statement in
-- seventeen. Anything else (a checkpoint added, removed or moved back) still notifies
-- with an empty payload, and a notified node then reads the whole table, as before.
-- Nodes that predate this read the table for every notification, whatever it says.
CREATE OR REPLACE FUNCTION notify_checkpoint_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_LEVEL = 'ROW' AND TG_OP = 'UPDATE' THEN
        IF NEW.position > OLD.position THEN
            PERFORM pg_notify('emporium_checkpoints', NEW.name || '=' || NEW.position);
            RETURN NULL;
        END IF;
    END IF;
    PERFORM pg_notify('emporium_checkpoints', '');
    RETURN NULL;
END
$$;
