-- Fieldbook phone store, schema 1.
-- Documents are the truth; every other table except outbox, photos and kv is
-- a projection rebuilt from documents in the same transaction as each write.

-- One row per Automerge document: a compacted snapshot plus the byte count
-- of the incremental chunks appended since.
CREATE TABLE documents (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('site', 'inspection', 'finding')),
    snapshot      BLOB NOT NULL,
    incr_bytes    INTEGER NOT NULL DEFAULT 0,
    incr_count    INTEGER NOT NULL DEFAULT 0,
    updated_at    INTEGER NOT NULL
) STRICT;

-- Incremental chunks (changes or merged saves) since the snapshot, in order.
CREATE TABLE doc_chunks (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id   TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    bytes    BLOB NOT NULL
) STRICT;
CREATE INDEX doc_chunks_doc ON doc_chunks(doc_id, seq);

-- Local changes the server has not acknowledged. Cleared only by an ack.
CREATE TABLE outbox (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    hash     TEXT NOT NULL UNIQUE,
    doc_id   TEXT NOT NULL,
    kind     TEXT NOT NULL,
    bytes    BLOB NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- Projections: pure functions of the documents (no local timestamps), so
-- replicas holding the same changes hold the same rows.
CREATE TABLE sites (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    name         TEXT NOT NULL,
    village_code TEXT NOT NULL,
    lat          REAL,
    lon          REAL,
    source       TEXT NOT NULL
) STRICT;
CREATE INDEX sites_area_kind ON sites(village_code, kind);
CREATE INDEX sites_kind ON sites(kind, village_code);

CREATE TABLE inspections (
    id            TEXT PRIMARY KEY,
    site_id       TEXT NOT NULL,
    site_kind     TEXT NOT NULL,
    village_code  TEXT NOT NULL,
    status        TEXT NOT NULL,
    revision      INTEGER NOT NULL,
    inspector     TEXT NOT NULL,
    started_at    INTEGER NOT NULL,
    submitted_at  INTEGER,
    answered      INTEGER NOT NULL,
    photos        INTEGER NOT NULL,
    conflicts     INTEGER NOT NULL
) STRICT;
CREATE INDEX inspections_area_date ON inspections(village_code, started_at);
CREATE INDEX inspections_status ON inspections(status, started_at);
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
CREATE INDEX findings_deadline ON findings(deadline);
CREATE INDEX findings_area ON findings(village_code, deadline);
CREATE INDEX findings_site ON findings(site_id);

-- Compressed photo files beside the database, named by content hash.
CREATE TABLE photos (
    hash          TEXT PRIMARY KEY,
    path          TEXT NOT NULL,
    bytes         INTEGER NOT NULL,
    upload_state  TEXT NOT NULL DEFAULT 'pending' CHECK (upload_state IN ('pending', 'uploading', 'done')),
    upload_offset INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX photos_state ON photos(upload_state);

-- Sync cursor, device identity and other small settings.
CREATE TABLE kv (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
) STRICT;
