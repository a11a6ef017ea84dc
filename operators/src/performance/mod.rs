//! Model performance: realized metrics once labels are known ([`classification`],
//! [`regression`]), with scikit-learn's definitions, so that a window's numbers equal what
//! `sklearn.metrics` gives for the same pairs. The quality gate (`driftline validate --labeled`)
//! and the monitor both compute them here. [`cbpe`] estimates a classifier's performance
//! before its labels arrive, as NannyML does.
pub mod cbpe;
pub mod classification;
pub mod regression;

#[cfg(test)]
mod sklearn_tests;
