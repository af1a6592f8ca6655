//! fieldbook-tests: end-to-end scenarios (many simulated phones, a real server
//! on loopback, bad networks, crashes). The scenarios arrive with the sync
//! server; the crate exists so the workspace has its final shape from the start.
