//! Every bound on what a record may hold, in one place. The phone's API,
//! the document layout check and the server's policy all read these, so a
//! record one side writes is never one the other refuses for size.
//!
//! Characters are Unicode scalar values; at four bytes each at most, the
//! longest text fits `doc::budget::VALUE_BYTES_MAX`.

/// Longest site name, finding title or responsible party, in characters.
pub const NAME_CHARS_MAX: usize = 200;
/// Longest note, comment, finding description or text answer, in characters.
pub const TEXT_CHARS_MAX: usize = 4000;
/// Longest user name, in characters (`admin user add` refuses longer).
pub const USER_CHARS_MAX: usize = 100;
/// Longest device id, in characters (login refuses longer).
pub const DEVICE_CHARS_MAX: usize = 200;
/// Longest record, event or note id, in characters (ids are UUIDs).
pub const ID_CHARS_MAX: usize = 64;
/// Longest answer, attribute or photo-field key, in characters (template
/// keys are at most 64 bytes).
pub const KEY_CHARS_MAX: usize = 64;
/// Longest enumerated word in a document (a kind, role, source, status).
pub const WORD_CHARS_MAX: usize = 32;

/// Notes on one inspection.
pub const NOTES_PER_RECORD_MAX: usize = 200;
/// Workflow events (submissions, reviews, comments, finding steps) on one
/// record: years of weekly back-and-forth.
pub const EVENTS_PER_RECORD_MAX: usize = 500;
/// Photos on one inspection or finding.
pub const PHOTOS_PER_RECORD_MAX: usize = 100;
/// Answers on one inspection (a template has well under 100 fields).
pub const ANSWERS_PER_RECORD_MAX: usize = 300;
/// Registry attributes on one site.
pub const ATTRIBUTES_PER_SITE_MAX: usize = 32;

/// Whether `s` is at most `max` characters.
pub fn fits(s: &str, max: usize) -> bool {
    // Byte length bounds character count from above: most strings pass
    // without counting.
    s.len() <= max || s.chars().count() <= max
}
