//! Fuzz target `registry_csv`: a thin call into
//! `fuzz_entry::registry_csv`, which the regression test
//! (`tests/tests/fuzz_regressions.rs`) replays on every fixture.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fieldbook_fuzz::fuzz_entry::registry_csv(data);
});
