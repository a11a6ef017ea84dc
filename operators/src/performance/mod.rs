//! Model performance: realized metrics once labels are known ([`classification`],
//! [`regression`]), with scikit-learn's definitions, so that a window's numbers equal what
//! `sklearn.metrics` gives for the same pairs. The quality gate (`driftline validate --labeled`)
//! and the monitor both compute them here. [`cbpe`] estimates a classifier's performance
//! before its labels arrive, as NannyML does.
//!
//! Over a stream: [`outputs`] reads what a model predicted, [`labels`] joins labels that arrive
//! late to their predictions in bounded memory, [`windows`] holds predictions and labels per
//! window and closes each into a report of [`realized`] metrics and CBPE's estimates, and
//! [`alerts`] opens and resolves alerts from those reports.
pub mod alerts;
pub mod cbpe;
pub mod classification;
pub mod labels;
pub mod outputs;
pub mod realized;
pub mod regression;
pub mod windows;

#[cfg(test)]
mod sklearn_tests;
