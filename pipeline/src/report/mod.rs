//! The drift report: a self-contained HTML page made from drift reports and alerts (aggregates
//! only, so its size grows with columns × windows, never with events). `driftline report`
//! writes it from files or from the topics, `driftline drift --format html` for one comparison,
//! and the health server shows it live at `/drift` (with `/drift.json`). [`performance`] adds the
//! model's performance per window when the records hold it.
pub mod charts;
pub mod format;
pub mod history;
pub mod live;
pub mod page;
pub mod performance;
pub mod read;
pub mod tables;

#[cfg(test)]
mod tests;
