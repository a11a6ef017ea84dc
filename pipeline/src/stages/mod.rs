//! The threads and tasks that [`crate::topology`] wires into the data path, and the messages they
//! pass: source (consume) → decode (several threads) → infer (several sessions) → sink (back in
//! order), with drift fed by the sink and the model reloader feeding the inference sessions, and
//! the labels reader feeding drift's label join. Without a model, features_only takes the place
//! of infer and sink. No stage imports another stage; they share only what they pass (messages,
//! chunk) and how it is kept in order (ordering).
pub mod chunk;
pub mod decode;
pub mod drift;
pub mod features_only;
pub mod infer;
pub mod labels;
pub mod messages;
pub mod ordering;
pub mod reload;
pub mod sink;
pub mod source;
