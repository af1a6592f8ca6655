-- Fieldbook server, schema 2: the trust boundary.

-- Operations each record holds, summed over its accepted items: a record
-- may not grow past what one sync item may carry.
ALTER TABLE documents ADD COLUMN ops INTEGER NOT NULL DEFAULT 0;

-- Records an operator took out of circulation: phones stop pulling them,
-- reports and exports skip them, pushes to them are refused.
CREATE TABLE quarantine (
    doc_id TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    by     TEXT NOT NULL,
    at     INTEGER NOT NULL
) STRICT;

-- Who uploaded the bytes of which photo (a hash alone proves nothing).
CREATE TABLE photo_owners (
    hash TEXT NOT NULL,
    user TEXT NOT NULL,
    at   INTEGER NOT NULL,
    PRIMARY KEY (hash, user)
) STRICT;

-- Who attached a photo to a record, written when the change arrives. A
-- photo is readable through a record only when the user who attached it
-- uploaded it.
CREATE TABLE photo_refs (
    hash   TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    user   TEXT NOT NULL,
    PRIMARY KEY (hash, doc_id, user)
) STRICT;
-- Records stored before this schema: their authors attached their photos,
-- and photos already on the server were uploaded by them.
INSERT OR IGNORE INTO photo_refs(hash, doc_id, user)
    SELECT p.hash, p.doc_id, coalesce(i.inspector, dv.user)
    FROM record_photos p
    JOIN documents d ON d.id = p.doc_id
    LEFT JOIN inspections i ON i.id = p.doc_id
    LEFT JOIN devices dv ON dv.id = d.creator_device
    WHERE coalesce(i.inspector, dv.user) IS NOT NULL;
INSERT OR IGNORE INTO photo_owners(hash, user, at) SELECT hash, user, 0 FROM photo_refs;

-- Accounts an administrator disabled: they cannot log in, their tokens are gone.
ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;

-- Repeats of one audit line (a login failing again and again) add to its
-- count instead of adding lines.
ALTER TABLE audit ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
ALTER TABLE audit ADD COLUMN last_at INTEGER;
CREATE INDEX audit_user ON audit(user, id);
