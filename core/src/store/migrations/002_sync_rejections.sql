-- Sync bookkeeping, schema 2.

-- Local changes the server refused, moved out of the outbox so sync does not
-- resend them forever, and kept so the app can tell the user why.
CREATE TABLE sync_rejections (
    hash     TEXT PRIMARY KEY,
    doc_id   TEXT NOT NULL,
    code     TEXT NOT NULL,
    message  TEXT NOT NULL,
    at       INTEGER NOT NULL
) STRICT;

-- Records the server asked to receive whole (it lacked their history).
CREATE TABLE sync_send_whole (
    doc_id   TEXT PRIMARY KEY
) STRICT;
