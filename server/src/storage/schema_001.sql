-- Fieldbook server, schema 1.

CREATE TABLE users (
    name          TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    areas         TEXT NOT NULL,          -- comma-separated division-code prefixes
    created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE devices (
    id            TEXT PRIMARY KEY,
    user          TEXT NOT NULL REFERENCES users(name),
    actor         TEXT NOT NULL UNIQUE,   -- the device's Automerge actor, hex
    registered_at INTEGER NOT NULL,
    last_seen     INTEGER,
    revoked       INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Device tokens, stored as BLAKE3 hashes of the random token.
CREATE TABLE tokens (
    hash       TEXT PRIMARY KEY,
    device     TEXT NOT NULL REFERENCES devices(id),
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- One row per record: a compacted snapshot, and the log rows after it.
CREATE TABLE documents (
    id             TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,
    village_code   TEXT NOT NULL,
    snapshot       BLOB NOT NULL,
    snapshot_seq   INTEGER NOT NULL,
    chunk_bytes    INTEGER NOT NULL DEFAULT 0,
    first_seq      INTEGER NOT NULL,
    last_seq       INTEGER NOT NULL,
    creator_device TEXT NOT NULL
) STRICT;
CREATE INDEX documents_area ON documents(village_code);

-- Every accepted change (item_kind 1) or whole-record save (2), in server
-- sequence order: what phones pull.
CREATE TABLE log (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id    TEXT NOT NULL,
    item_kind INTEGER NOT NULL,
    data      BLOB NOT NULL,
    device    TEXT NOT NULL,
    at        INTEGER NOT NULL
) STRICT;
CREATE INDEX log_doc ON log(doc_id, seq);

-- Projections, rewritten from documents in the transaction that changes them.
CREATE TABLE sites (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    name         TEXT NOT NULL,
    village_code TEXT NOT NULL,
    lat          REAL,
    lon          REAL,
    source       TEXT NOT NULL,
    attributes   TEXT NOT NULL
) STRICT;
CREATE INDEX sites_area ON sites(village_code, kind);

CREATE TABLE inspections (
    id               TEXT PRIMARY KEY,
    site_id          TEXT NOT NULL,
    site_kind        TEXT NOT NULL,
    village_code     TEXT NOT NULL,
    template_version INTEGER NOT NULL,
    status           TEXT NOT NULL,
    revision         INTEGER NOT NULL,
    inspector        TEXT NOT NULL,
    device           TEXT NOT NULL,
    started_at       INTEGER NOT NULL,
    submitted_at     INTEGER,
    reviewed_at      INTEGER,
    lat              REAL,
    lon              REAL,
    accuracy_m       REAL,
    mock_location    INTEGER NOT NULL,
    answers          TEXT NOT NULL,        -- JSON object of the winning values
    photos           INTEGER NOT NULL,
    conflicts        INTEGER NOT NULL
) STRICT;
CREATE INDEX inspections_area ON inspections(village_code, started_at);
CREATE INDEX inspections_status ON inspections(status, submitted_at);
CREATE INDEX inspections_site ON inspections(site_id, started_at);

CREATE TABLE findings (
    id            TEXT PRIMARY KEY,
    inspection_id TEXT,
    site_id       TEXT NOT NULL,
    site_kind     TEXT NOT NULL,
    village_code  TEXT NOT NULL,
    title         TEXT NOT NULL,
    status        TEXT NOT NULL,
    responsible   TEXT,
    deadline      TEXT,
    escalated     INTEGER NOT NULL,
    raised_at     INTEGER NOT NULL,
    closed_at     INTEGER
) STRICT;
CREATE INDEX findings_area ON findings(village_code, deadline);
CREATE INDEX findings_deadline ON findings(deadline);

-- Photo references per record, for "may this user read this photo".
CREATE TABLE record_photos (
    hash   TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    PRIMARY KEY (hash, doc_id)
) STRICT;

-- Append-only audit log.
CREATE TABLE audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    user    TEXT NOT NULL,
    device  TEXT,
    action  TEXT NOT NULL,
    detail  TEXT NOT NULL
) STRICT;
