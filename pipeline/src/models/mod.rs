//! What scores: model files loaded and checked, the serving set with its canary variants and
//! shadow, and who each model is. No threads and no metrics here.
pub mod canary;
pub mod identity;
pub mod load;
pub mod set;
pub mod shadow;
