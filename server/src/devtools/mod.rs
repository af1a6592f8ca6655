//! Tools for trying and measuring Fieldbook, not for running it: simulated
//! phones against a server (`fieldbook sim`), a generated site registry
//! (the demo and the benchmarks), and plausible template answers.

pub mod answers;
pub mod registry_gen;
pub mod sim;
