-- What the reference server must remember across restarts: the multipart uploads it created and
-- has not seen completed or aborted, and what each user uploaded in the last 24 hours.

-- One row per open upload, and per creation admitted but not yet created in the store
-- (`reserved`: counted against the owner's limit so that parallel creations cannot overshoot).
CREATE TABLE open_uploads (
    upload_id          TEXT PRIMARY KEY,
    reserved           INTEGER NOT NULL DEFAULT 0,
    object_key         TEXT NOT NULL,
    size               INTEGER NOT NULL,
    part_size          INTEGER,
    checksum_algorithm TEXT,
    owner              TEXT,            -- NULL without authentication
    created            INTEGER NOT NULL -- Unix seconds
);
CREATE INDEX open_uploads_by_owner ON open_uploads (owner);

-- One row per upload admitted against a user's quota (an aborted one's row is deleted).
CREATE TABLE quota_charges (
    id    INTEGER PRIMARY KEY,
    user  TEXT NOT NULL,
    at    INTEGER NOT NULL, -- Unix seconds
    bytes INTEGER NOT NULL
);
CREATE INDEX quota_charges_by_user ON quota_charges (user, at);
