-- Stale reservations are looked for on every creation: an index of reservations alone, so that
-- this costs the same with 10 or 100,000 open uploads.
CREATE INDEX open_uploads_reservations ON open_uploads (created) WHERE reserved = 1;
