-- What the reference server must remember across restarts and share between its instances: the
-- multipart uploads it created and has not seen completed or aborted, and what each user
-- uploaded in the last 24 hours. The same tables as the SQLite schema's.

-- One row per open upload, and per creation admitted but not yet created in the store
-- (`reserved`: counted against the owner's limit so that parallel creations cannot overshoot).
CREATE TABLE open_uploads (
    upload_id          TEXT PRIMARY KEY,
    reserved           BOOLEAN NOT NULL DEFAULT false,
    object_key         TEXT NOT NULL,
    size               BIGINT NOT NULL,
    part_size          BIGINT,
    checksum_algorithm TEXT,
    owner              TEXT,           -- NULL without authentication
    created            BIGINT NOT NULL -- Unix seconds
);
CREATE INDEX open_uploads_by_owner ON open_uploads (owner);
-- Stale reservations are looked for on every creation.
CREATE INDEX open_uploads_reservations ON open_uploads (created) WHERE reserved;

-- One row per upload admitted against a user's quota (an aborted one's row is deleted).
CREATE TABLE quota_charges (
    id     BIGSERIAL PRIMARY KEY,
    "user" TEXT NOT NULL,
    at     BIGINT NOT NULL, -- Unix seconds
    bytes  BIGINT NOT NULL
);
CREATE INDEX quota_charges_by_user ON quota_charges ("user", at);
