//! The fleet view's settings: `[fleet]` for the instances that publish partials, `[aggregate]`
//! for `driftline aggregate`, which merges them (README, "One drift view for a consumer group").
use serde::{Deserialize, Serialize};

use crate::config::{Settings, TimeSource, WindowKind};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetSettings {
    pub enabled: bool,
    pub partials_topic: String,
    pub ks_grid_points: usize,
    pub name: String,
    pub replay_timeout_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateSettings {
    pub group_id: String,
    pub reports_topic: String,
    pub alerts_topic: String,
    pub max_wait_ms: u64,
}

impl Settings {
    /// The fleet's name on its partials: `fleet.name`, else the consumer group and the input
    /// topic (one fleet per partials partition, so its windows stay in order).
    pub fn fleet_name(&self) -> String {
        match self.fleet.name.as_str() {
            "" => format!(
                "{}/{}",
                self.kafka.group_id,
                self.kafka.input_topics.join(",")
            ),
            name => name.to_string(),
        }
    }

    /// What the fleet view needs of the rest of the settings.
    pub(crate) fn fleet_problems(&self) -> Vec<String> {
        let (f, d) = (&self.fleet, &self.drift);
        let mut p = Vec::new();
        if self.aggregate.max_wait_ms == 0 {
            p.push("aggregate.max_wait_ms must be positive".into());
        }
        if !f.enabled {
            return p;
        }
        if !d.enabled {
            p.push("fleet.enabled needs drift.enabled".into());
        }
        if d.window != WindowKind::Time || d.time_source != TimeSource::Event {
            p.push("fleet.enabled needs event-time windows (drift.window = \"time\", drift.time_source = \"event\"): count windows cannot be aligned across instances".into());
        }
        if d.profile.is_empty() {
            p.push("fleet.enabled needs drift.profile: a profile learned online differs per instance, so their partials would not merge (write one with `driftline profile`)".into());
        }
        if self.kafka.input_topics.len() != 1 {
            p.push("fleet.enabled needs exactly one input topic (partials are keyed by its partition numbers)".into());
        }
        if f.partials_topic.is_empty() {
            p.push("fleet.partials_topic is empty".into());
        } else if self.kafka.input_topics.contains(&f.partials_topic) {
            p.push(format!(
                "fleet.partials_topic `{}` is also an input topic",
                f.partials_topic
            ));
        }
        if f.ks_grid_points < 2 {
            p.push("fleet.ks_grid_points must be at least 2".into());
        }
        if f.replay_timeout_ms == 0 {
            p.push("fleet.replay_timeout_ms must be positive".into());
        }
        p
    }
}
