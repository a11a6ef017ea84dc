//! The threads and tasks that [`crate::topology`] wires into the data path, and the messages they
//! pass: source (consume, decode, batch) → infer → sink, with drift beside it and the model
//! reloader feeding the inference stage, and the labels reader feeding drift's label join.
//! Without a model, features_only takes the place of infer and sink. No stage imports another
//! stage.
pub mod drift;
pub mod features_only;
pub mod infer;
pub mod labels;
pub mod messages;
pub mod reload;
pub mod sink;
pub mod source;
