//! The fuzz targets' shared code: the entry functions of
//! `tests/src/fuzz_entry.rs`, compiled in from that file.
//!
//! The file belongs to the end-to-end crate (`fieldbook-tests`), whose
//! regression test replays every fixture through it on stable. Depending
//! on that crate here would also build its simulation and HTTP test
//! support with sanitizer flags; including the one file keeps the fuzz
//! build to the core, the server and the entry points, while the code the
//! fuzzer runs and the code the regression test runs stay one file.

#[path = "../../tests/src/fuzz_entry.rs"]
pub mod fuzz_entry;
