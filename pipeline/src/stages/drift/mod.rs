//! Drift beside the data path: [`tracker`] holds the windows and the reference, [`stage`] runs
//! it on its own thread and publishes reports and alerts, [`variants`] adds the canary and
//! shadow columns, [`performance`] measures the serving model per window with the labels joined,
//! [`fleet`] publishes the partials of the fleet view, [`fleet_progress`] reads how far
//! the fleet has published.
pub mod fleet;
pub mod fleet_progress;
pub mod performance;
pub mod stage;
pub mod tracker;
pub mod variants;
