//! The error domain shared by every operator: each error says whether it is the event's fault
//! (send it to the dead-letter topic), the outside world's (retry), or ours (stop).

/// What the runtime should do with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input itself is bad: dead-letter it and carry on.
    BadData,
    /// Something outside failed (a broker, a device): retrying may help.
    External,
    /// A bug or a broken setup (model and schema disagree): stop.
    Internal,
}
