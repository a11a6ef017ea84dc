//! The subcommands other than `run`: their arguments ([`args`]) and one file each, plus the input
//! files and progress line they share.
pub mod args;
pub mod batch;
pub mod demo;
pub mod demo_labels;
pub mod drift;
pub mod gate;
pub mod gen;
pub mod input;
pub mod performance;
pub mod profile;
pub mod progress;
pub mod report;
pub mod validate;
