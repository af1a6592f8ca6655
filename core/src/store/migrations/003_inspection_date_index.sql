-- Schema 3: the default inspection list (all of a user's areas, newest
-- first) sorted every row without an index on the date alone.
CREATE INDEX inspections_date ON inspections(started_at, id);
