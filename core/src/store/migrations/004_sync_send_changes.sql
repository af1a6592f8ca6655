-- Schema 4: records to send change by change.
--
-- The server refused a record sent whole. A whole record covers all its
-- unacknowledged changes, some of which the server may hold already (an
-- answer that stored them was lost); sent one by one, each change gets a
-- verdict of its own, and only the refused ones leave the phone.
CREATE TABLE sync_send_changes (
    doc_id   TEXT PRIMARY KEY
) STRICT;
