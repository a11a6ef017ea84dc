//! Drift beside the data path: [`tracker`] holds the windows and the reference, [`stage`] runs
//! it on its own thread and publishes reports and alerts, [`variants`] adds the canary and
//! shadow columns.
pub mod stage;
pub mod tracker;
pub mod variants;
