//! Who a model is, as predictions, reports, metrics and logs name it.
/// Which model is serving: on every prediction (name, version), in metrics and in logs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModelIdentity {
    pub name: String,
    pub version: String,
    /// Of the file's bytes, hex: tells two files with the same version apart.
    pub sha256: String,
    pub execution_provider: &'static str,
}
