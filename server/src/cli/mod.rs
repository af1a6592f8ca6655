//! The verbs of the `fieldbook` binary, one module each; `main` only parses
//! arguments and reports errors.

pub mod admin;
pub mod demo;
pub mod export;
pub mod photo;
pub mod serve;
