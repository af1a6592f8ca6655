-- Fieldbook server, schema 3: the review console's queue.

-- The queue pages by (submitted_at, id) within a status, oldest first; with
-- every status at once it walks submission order.
CREATE INDEX inspections_queue ON inspections(status, submitted_at, id);
CREATE INDEX inspections_submitted ON inspections(submitted_at, id);
