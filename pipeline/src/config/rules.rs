//! The cross-field rules of [`Settings`]: what serde's types cannot say. Each broken rule is
//! one line, so `driftline validate` and startup list every problem at once.
use crate::config::Settings;

/// librdkafka's default `message.max.bytes`.
const LIBRDKAFKA_MESSAGE_MAX_BYTES: usize = 1_000_000;
/// Room kept beside a dead letter's key and payload for its headers.
const DEAD_LETTER_HEADROOM: usize = 64 * 1024;

impl Settings {
    /// Canary and shadow: names that can label metrics and drift columns, weights that split.
    fn variant_problems(&self) -> Vec<String> {
        let m = &self.model;
        let mut p = Vec::new();
        let mut names = vec![m.name.as_str()];
        for v in &m.variants {
            if v.weight == 0 {
                p.push(format!("model.variants `{}` has weight 0", v.name));
            }
            if v.path.as_os_str().is_empty() {
                p.push(format!("model.variants `{}` has no path", v.name));
            }
            names.push(&v.name);
        }
        if !m.variants.is_empty() && m.weight == 0 {
            p.push("model.weight is 0: with variants the serving model needs a share (remove it from traffic by promoting a variant instead)".into());
        }
        if !m.shadow.path.as_os_str().is_empty() {
            names.push(&m.shadow.name);
            if self.kafka.shadow_topic.is_empty() {
                p.push("kafka.shadow_topic is empty but model.shadow.path is set".into());
            } else if [&self.kafka.output_topic, &self.kafka.dlq_topic]
                .contains(&&self.kafka.shadow_topic)
                || self.kafka.input_topics.contains(&self.kafka.shadow_topic)
            {
                p.push(format!(
                    "kafka.shadow_topic `{}` is also an input, output or dead-letter topic",
                    self.kafka.shadow_topic
                ));
            }
        }
        for (i, name) in names.iter().enumerate() {
            if name.is_empty() && i == 0 {
                continue; // reported below as model.name is empty
            }
            if name.is_empty() || name.contains(['@', '[', ']']) {
                p.push(format!("model name `{name}` must be non-empty, without `@`, `[` or `]` (it names drift columns)"));
            } else if names[..i].contains(name) {
                p.push(format!("model name `{name}` is used twice: model.name, variant and shadow names must differ"));
            }
        }
        p
    }

    /// The labels topic: joined by the drift stage, so it needs drift and a model.
    fn label_problems(&self) -> Vec<String> {
        let (k, l) = (&self.kafka, &self.labels);
        let mut p = Vec::new();
        if k.labels_topic.is_empty() {
            return p;
        }
        if !self.drift.enabled || !self.has_model() {
            p.push("kafka.labels_topic needs drift.enabled and a model (labels are joined to predictions in the drift stage)".into());
        }
        let others = [
            &k.output_topic,
            &k.dlq_topic,
            &k.drift_topic,
            &k.alerts_topic,
        ];
        if others.contains(&&k.labels_topic) || k.input_topics.contains(&k.labels_topic) {
            p.push(format!(
                "kafka.labels_topic `{}` is also an input, output, dead-letter, drift or alerts topic",
                k.labels_topic
            ));
        }
        if l.id_field.is_empty() || l.label_field.is_empty() {
            p.push("labels: id_field and label_field must be set".into());
        }
        if l.max_delay_ms <= 0 || l.max_pending == 0 {
            p.push("labels: max_delay_ms and max_pending must be at least 1".into());
        }
        p
    }

    /// Cross-field rules; each broken one is a line.
    pub fn problems(&self) -> Vec<String> {
        let mut p = self.schema.problems();
        if self.kafka.input_topics.is_empty() {
            p.push("kafka.input_topics is empty".into());
        }
        for (key, topic) in [
            ("output_topic", &self.kafka.output_topic),
            ("dlq_topic", &self.kafka.dlq_topic),
        ] {
            if topic.is_empty() && key == "output_topic" && !self.has_model() {
                continue; // nothing is scored, so nothing is written there
            }
            if topic.is_empty() {
                p.push(format!("kafka.{key} is empty"));
            } else if self.kafka.input_topics.contains(topic) {
                p.push(format!("kafka.{key} `{topic}` is also an input topic: the pipeline would read its own output"));
            }
        }
        if !matches!(self.kafka.auto_offset_reset.as_str(), "earliest" | "latest") {
            p.push(format!(
                "kafka.auto_offset_reset must be \"earliest\" or \"latest\", not {:?}",
                self.kafka.auto_offset_reset
            ));
        }
        for (key, map) in [
            ("consumer", &self.kafka.consumer),
            ("common", &self.kafka.common),
        ] {
            for managed in [
                "enable.auto.offset.store",
                "enable.auto.commit",
                "group.id",
                "bootstrap.servers",
            ] {
                if map.contains_key(managed) {
                    p.push(format!("kafka.{key} sets `{managed}`, which driftline manages (at-least-once depends on it)"));
                }
            }
        }
        if self.batch.max_rows == 0 {
            p.push("batch.max_rows must be at least 1".into());
        }
        if self.pipeline.channel_capacity == 0 {
            p.push("pipeline.channel_capacity must be at least 1".into());
        }
        for (key, count) in [
            ("pipeline.decode_threads", self.pipeline.decode_threads),
            ("pipeline.cores", self.pipeline.cores),
            ("runtime.sessions", self.runtime.sessions),
        ] {
            if count == super::ThreadCount::Fixed(0) {
                p.push(format!("{key} must be at least 1, or \"auto\""));
            }
        }
        if self.pipeline.max_event_bytes == 0 {
            p.push("pipeline.max_event_bytes must be at least 1".into());
        }
        // Headers (reason, detail, source position, the event's own) need room beside the payload.
        let producer_limit = self
            .kafka
            .producer
            .get("message.max.bytes")
            .or_else(|| self.kafka.common.get("message.max.bytes"))
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(LIBRDKAFKA_MESSAGE_MAX_BYTES);
        if self.pipeline.max_dead_letter_bytes + DEAD_LETTER_HEADROOM > producer_limit {
            p.push(format!(
                "pipeline.max_dead_letter_bytes ({}) leaves less than {DEAD_LETTER_HEADROOM} bytes for headers under the producer's message.max.bytes ({producer_limit}): raise kafka.producer \"message.max.bytes\" (and the dead-letter topic's max.message.bytes)",
                self.pipeline.max_dead_letter_bytes
            ));
        }
        if self.pipeline.max_key_bytes == 0 {
            p.push("pipeline.max_key_bytes must be at least 1".into());
        }
        let perf = &self.performance;
        if perf.window_events == 0 || perf.window_ms <= 0 || perf.max_open_windows == 0 {
            p.push(
                "performance: window_events, window_ms and max_open_windows must be at least 1"
                    .into(),
            );
        }
        p.extend(self.label_problems());
        p.extend(self.fleet_problems());
        if self.drift.enabled {
            let d = &self.drift;
            if d.panes == 0 || d.slide == 0 || d.slide > d.panes {
                p.push("drift: panes and slide must be at least 1, and slide at most panes".into());
            }
            if d.bins < 2 || d.channel_capacity == 0 || d.pane_events == 0 || d.pane_ms <= 0 {
                p.push("drift: bins must be at least 2; channel_capacity, pane_events and pane_ms at least 1".into());
            }
            if d.profile.is_empty() && d.warmup_events == 0 {
                p.push("drift: give a profile file or warmup_events > 0".into());
            }
            for (key, topic) in [
                ("drift_topic", &self.kafka.drift_topic),
                ("alerts_topic", &self.kafka.alerts_topic),
            ] {
                if topic.is_empty() || self.kafka.input_topics.contains(topic) {
                    p.push(format!(
                        "kafka.{key} must be set and must not be an input topic"
                    ));
                }
            }
        }
        if !self.has_model() {
            let m = &self.model;
            if !m.variants.is_empty() || !m.shadow.path.as_os_str().is_empty() {
                p.push(
                    "model.variants and model.shadow need a serving model: model.path is not set"
                        .into(),
                );
            }
        }
        p.extend(self.variant_problems());
        if self.model.name.is_empty() {
            p.push("model.name is empty".into());
        }
        let h = &self.health;
        if !h.listen.is_empty() && h.listen.parse::<std::net::SocketAddr>().is_err() {
            p.push(format!(
                "health.listen must be IP:PORT (e.g. \"127.0.0.1:9464\"), not {:?}",
                h.listen
            ));
        }
        if h.stall_timeout_ms == 0 || h.statistics_interval_ms == 0 {
            p.push(
                "health.stall_timeout_ms and health.statistics_interval_ms must be at least 1"
                    .into(),
            );
        }
        for (key, map) in [
            ("common", &self.kafka.common),
            ("consumer", &self.kafka.consumer),
            ("producer", &self.kafka.producer),
        ] {
            if map.contains_key("statistics.interval.ms") {
                p.push(format!("kafka.{key} sets `statistics.interval.ms`: set health.statistics_interval_ms instead (lag and readiness depend on it)"));
            }
        }
        let t = &self.telemetry;
        if !t.otlp_endpoint.is_empty() && !t.otlp_endpoint.starts_with("http://") {
            p.push(format!("telemetry.otlp_endpoint must be an http:// URL of an OTLP/HTTP collector (TLS to the collector is not built in; run it beside driftline), not {:?}", t.otlp_endpoint));
        }
        if t.metrics_interval_ms == 0 {
            p.push("telemetry.metrics_interval_ms must be at least 1".into());
        }
        p
    }
}
