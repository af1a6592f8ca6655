//! `cargo run -p uniffi-bindgen -- generate --library <libfieldbook_ffi.so>
//! --language kotlin --out-dir <dir>`: uniffi's generator, pinned to the
//! uniffi version the bindings are built with so both always agree.

fn main() {
    uniffi::uniffi_bindgen_main()
}
