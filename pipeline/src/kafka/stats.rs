//! librdkafka's statistics (emitted every `health.statistics_interval_ms` as JSON), read for the
//! two things driftline needs from them: whether the client has a live broker connection, and
//! the consumer lag of each assigned partition. Only those fields are parsed; the rest of the
//! (large) document is skipped.
use std::collections::BTreeMap;

use serde::Deserialize;

use crate::telemetry::metrics::PartitionLag;

#[derive(Deserialize, Default)]
pub struct ClientStatistics {
    #[serde(default)]
    brokers: BTreeMap<String, BrokerStatistics>,
    #[serde(default)]
    topics: BTreeMap<String, TopicStatistics>,
    /// Messages in the producer's queues (queued or in flight).
    #[serde(default)]
    msg_cnt: i64,
}

#[derive(Deserialize)]
struct BrokerStatistics {
    #[serde(default)]
    state: String,
    /// "configured" (bootstrap), "learned" (from metadata), "logical" or "internal".
    #[serde(default)]
    source: String,
}

#[derive(Deserialize)]
struct TopicStatistics {
    #[serde(default)]
    partitions: BTreeMap<String, PartitionStatistics>,
}

#[derive(Deserialize)]
struct PartitionStatistics {
    partition: i32,
    /// The high watermark minus the committed offset; -1 when either is unknown.
    #[serde(default = "unknown")]
    consumer_lag: i64,
    /// The high watermark minus the stored offset (driftline stores what is acknowledged, so
    /// this is its own progress, ahead of the periodic commit); -1 when unknown.
    #[serde(default = "unknown")]
    consumer_lag_stored: i64,
    /// "none" for partitions this consumer does not fetch.
    #[serde(default)]
    fetch_state: String,
}

fn unknown() -> i64 {
    -1
}

impl ClientStatistics {
    pub fn parse(json: &[u8]) -> Result<ClientStatistics, serde_json::Error> {
        serde_json::from_slice(json)
    }

    /// Messages the producer holds, not yet acknowledged.
    pub fn queued_messages(&self) -> i64 {
        self.msg_cnt
    }

    /// True when at least one real broker connection (not the internal or logical ones) is up.
    pub fn broker_up(&self) -> bool {
        self.brokers
            .values()
            .any(|b| b.state == "UP" && matches!(b.source.as_str(), "configured" | "learned"))
    }

    /// Lag of every partition being fetched whose lag is known, in topic and partition order:
    /// from the last acknowledged offset, or before there is one, from the committed offset.
    pub fn partition_lags(&self) -> Vec<PartitionLag> {
        let mut lags: Vec<PartitionLag> = self
            .topics
            .iter()
            .flat_map(|(topic, t)| {
                t.partitions
                    .values()
                    .filter(|p| p.partition >= 0 && p.fetch_state != "none")
                    .filter_map(move |p| {
                        let lag = if p.consumer_lag_stored >= 0 {
                            p.consumer_lag_stored
                        } else {
                            p.consumer_lag
                        };
                        (lag >= 0).then(|| PartitionLag {
                            topic: topic.clone(),
                            partition: p.partition,
                            lag,
                        })
                    })
            })
            .collect();
        lags.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        lags
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Abridged from a real librdkafka 2.x consumer's statistics.
    const SAMPLE: &str = r#"{
      "name": "rdkafka#consumer-1", "type": "consumer", "ts": 1,
      "brokers": {
        "127.0.0.1:9092/bootstrap": {"name": "127.0.0.1:9092/bootstrap", "nodeid": -1, "source": "configured", "state": "INIT"},
        "127.0.0.1:9092/1": {"name": "127.0.0.1:9092/1", "nodeid": 1, "source": "learned", "state": "UP"},
        "GroupCoordinator": {"name": "GroupCoordinator", "nodeid": 1, "source": "logical", "state": "UP"}
      },
      "topics": {
        "events": {"topic": "events", "partitions": {
          "1": {"partition": 1, "fetch_state": "active", "consumer_lag": 12, "consumer_lag_stored": 5, "hi_offset": 40},
          "0": {"partition": 0, "fetch_state": "active", "consumer_lag": 0},
          "2": {"partition": 2, "fetch_state": "none", "consumer_lag": 7},
          "3": {"partition": 3, "fetch_state": "active", "consumer_lag": -1},
          "-1": {"partition": -1, "fetch_state": "none", "consumer_lag": -1}
        }}
      }
    }"#;

    #[test]
    fn reads_broker_state_and_lag_of_fetched_partitions() {
        let s = ClientStatistics::parse(SAMPLE.as_bytes()).unwrap();
        assert!(s.broker_up());
        let lags = s.partition_lags();
        assert_eq!(
            lags,
            vec![
                PartitionLag {
                    topic: "events".into(),
                    partition: 0,
                    lag: 0
                },
                PartitionLag {
                    topic: "events".into(),
                    partition: 1,
                    lag: 5
                },
            ]
        );
    }

    #[test]
    fn a_logical_coordinator_alone_is_not_a_connection() {
        let down = SAMPLE.replace(
            r#""source": "learned", "state": "UP""#,
            r#""source": "learned", "state": "CONNECT""#,
        );
        let s = ClientStatistics::parse(down.as_bytes()).unwrap();
        assert!(!s.broker_up());
        assert!(!ClientStatistics::parse(b"{}").unwrap().broker_up());
    }
}
