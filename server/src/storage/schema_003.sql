-- Fieldbook server, schema 3: the review console's queue.

-- The queue pages by (submitted_at, id) within a status, oldest first; with
-- every status at once it walks submission order. Area and kind ride
-- along, so filtering while walking reads the index alone.
CREATE INDEX inspections_queue ON inspections(status, submitted_at, id, village_code, site_kind);
CREATE INDEX inspections_submitted ON inspections(submitted_at, id, status, village_code, site_kind);
-- Counts per status of an area (and kind, and period) read this index
-- alone, never the rows; a small area's queue is read through it too.
CREATE INDEX inspections_counts ON inspections(status, village_code, site_kind, submitted_at);
