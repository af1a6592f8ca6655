//! Fuzz target `wire_response`: a thin call into
//! `fuzz_entry::wire_response`, which the regression test
//! (`tests/tests/fuzz_regressions.rs`) replays on every fixture.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fieldbook_fuzz::fuzz_entry::wire_response(data);
});
