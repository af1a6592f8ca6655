//! Fuzz target `template`: a thin call into
//! `fuzz_entry::template`, which the regression test
//! (`tests/tests/fuzz_regressions.rs`) replays on every fixture.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fieldbook_fuzz::fuzz_entry::template(data);
});
