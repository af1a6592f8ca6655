//! Fuzz target `store_apply`: a thin call into
//! `fuzz_entry::store_apply`, which the regression test
//! (`tests/tests/fuzz_regressions.rs`) replays on every fixture.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fieldbook_fuzz::fuzz_entry::store_apply(data);
});
