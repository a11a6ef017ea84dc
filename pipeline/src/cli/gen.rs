//! `driftline gen`: simulated IoT sensors (models/sensors.json) producing JSON events.
//!
//! Each event is one device's reading of every sensor, Normal(mean, std), with a small share of
//! faulty readings (a sensor off by several standard deviations) for the anomaly model to find.
//! Options inject drift (from event N on, one sensor's mean moves) and malformed events (for the
//! dead-letter path), and [`LabelFeed`] sends each event's ground truth (faulty or not) to a
//! labels topic a little later, as confirmations arrive in the field. Every event has a unique
//! `event_id` beside its `device_id` (the Kafka key). The generator is seeded: the same options
//! give the same events.
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;
use serde::Deserialize;

const SENSORS_JSON: &str = include_str!("../../../models/sensors.json");

#[derive(Debug, Clone, Deserialize)]
pub struct Sensor {
    pub name: String,
    pub mean: f64,
    pub std: f64,
}

#[derive(Debug, Clone, Deserialize)]
struct SensorFile {
    fault_shift_std: f64,
    sensors: Vec<Sensor>,
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenOptions {
    pub count: u64,
    /// Events per second; 0 means as fast as the producer takes them.
    pub rate: u64,
    pub devices: u32,
    /// Share of readings with a faulty sensor.
    pub fault_rate: f64,
    /// From this event index on, `drift_sensor`'s mean moves by `drift_shift_std` standard deviations.
    pub drift_after: Option<u64>,
    pub drift_sensor: String,
    pub drift_shift_std: f64,
    /// Every Nth event is malformed (0: none).
    pub malformed_every: u64,
    pub seed: u64,
    /// Each event's label, sent later to a labels topic.
    pub labels: Option<LabelFeed>,
}

/// Labels for the generated events: `{"event_id": …, "label": 0 or 1}` (1: the reading is
/// faulty), keyed like the event (so the labels topic is co-partitioned with the input), sent
/// `delay` after the event; every `missing_every`-th label is never sent (0: none missing).
#[derive(Debug, Clone)]
pub struct LabelFeed {
    pub topic: String,
    pub delay: Duration,
    pub missing_every: u64,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            count: 100_000,
            rate: 0,
            devices: 500,
            fault_rate: 0.02,
            drift_after: None,
            drift_sensor: "temperature".into(),
            drift_shift_std: 1.0,
            malformed_every: 0,
            seed: 1,
            labels: None,
        }
    }
}

/// A seeded generator of event payloads.
pub struct EventGenerator {
    options: GenOptions,
    sensors: Vec<Sensor>,
    fault_shift_std: f64,
    drift_index: Option<usize>,
    rng: SplitMix64,
    start_ms: i64,
    /// Whether the last event written was a faulty reading (its label).
    last_faulty: bool,
}

impl EventGenerator {
    pub fn new(options: GenOptions, start_ms: i64) -> anyhow::Result<Self> {
        let file: SensorFile = serde_json::from_str(SENSORS_JSON).context("models/sensors.json")?;
        let drift_index = match options.drift_after {
            Some(_) => Some(
                file.sensors
                    .iter()
                    .position(|s| s.name == options.drift_sensor)
                    .with_context(|| format!("no sensor named {}", options.drift_sensor))?,
            ),
            None => None,
        };
        let rng = SplitMix64(options.seed);
        Ok(EventGenerator {
            options,
            sensors: file.sensors,
            fault_shift_std: file.fault_shift_std,
            drift_index,
            rng,
            start_ms,
            last_faulty: false,
        })
    }

    pub fn sensors(&self) -> &[Sensor] {
        &self.sensors
    }

    /// The label of the last event written: 1 if the reading was faulty.
    pub fn last_label(&self) -> i64 {
        i64::from(self.last_faulty)
    }

    /// Writes event `i` into `out` and returns its key (the device id).
    pub fn event(&mut self, i: u64, out: &mut Vec<u8>) -> String {
        use std::io::Write;
        out.clear();
        let device = format!(
            "sensor-{:05}",
            self.rng.next() % self.options.devices.max(1) as u64
        );
        if self.options.malformed_every > 0
            && i % self.options.malformed_every == self.options.malformed_every - 1
        {
            out.extend_from_slice(malformed(i).as_bytes());
            return device;
        }
        let faulty = self.rng.uniform() < self.options.fault_rate;
        self.last_faulty = faulty;
        let fault_sensor = (self.rng.next() % self.sensors.len() as u64) as usize;
        let drifting = self.options.drift_after.is_some_and(|n| i >= n);
        let _ = write!(
            out,
            "{{\"device_id\":\"{device}\",\"event_id\":\"{}\",\"ts\":{}",
            event_id(self.options.seed, i),
            self.start_ms + i as i64
        );
        for (j, s) in self.sensors.iter().enumerate() {
            let mut z = self.rng.normal();
            if faulty && j == fault_sensor {
                z += if self.rng.uniform() < 0.5 {
                    -self.fault_shift_std
                } else {
                    self.fault_shift_std
                };
            }
            if drifting && Some(j) == self.drift_index {
                z += self.options.drift_shift_std;
            }
            let _ = write!(out, ",\"{}\":", s.name);
            write_fixed4(out, s.mean + z * s.std);
        }
        out.push(b'}');
        device
    }
}

/// Writes `v` with four decimals, like `{:.4}` but through integers: the standard formatter's
/// exact mode (dragon4) made the generator the most expensive thread of a live benchmark feed.
fn write_fixed4(out: &mut Vec<u8>, v: f64) {
    let scaled = (v * 10_000.0).round() as i64;
    if scaled < 0 {
        out.push(b'-');
    }
    let a = scaled.unsigned_abs();
    out.extend_from_slice(itoa::Buffer::new().format(a / 10_000).as_bytes());
    let frac = a % 10_000;
    out.extend_from_slice(&[
        b'.',
        b'0' + (frac / 1000) as u8,
        b'0' + (frac / 100 % 10) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ]);
}

/// The malformed events the demo mixes in, one kind after another.
fn malformed(i: u64) -> String {
    match (i / 7) % 6 {
        0 => "{\"device_id\":\"broken\",\"ts\":1,\"temperature\":".to_string(),
        1 => format!("{{\"device_id\":\"bad-{i}\",\"temperature\":\"hot\"}}"),
        2 => "{\"ts\":1,\"temperature\":20.0}".to_string(),
        3 => format!("{{\"device_id\":\"bad-{i}\",\"temperature\":1e39}}"),
        4 => String::new(),
        _ => "not json at all".to_string(),
    }
}

/// Event `i`'s id: unique within a run (the seed keeps two runs' ids apart).
pub fn event_id(seed: u64, i: u64) -> String {
    format!("{seed}-{i}")
}

/// What a generator run produced.
#[derive(Debug, Clone, Copy, Default)]
pub struct GenReport {
    pub produced: u64,
    pub malformed: u64,
    pub labels: u64,
}

/// Produces `options.count` events to `topic`, paced at `options.rate`.
pub fn produce(
    bootstrap: &str,
    topic: &str,
    options: GenOptions,
    stop: &std::sync::atomic::AtomicBool,
) -> anyhow::Result<GenReport> {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .create()
        .context("creating the generator's producer")?;
    let malformed_every = options.malformed_every;
    let (count, rate, seed) = (options.count, options.rate, options.seed);
    let labels = options.labels.clone();
    let mut generator = EventGenerator::new(options, crate::clock::now_ms())?;
    let started = Instant::now();
    let mut payload = Vec::with_capacity(512);
    let mut report = GenReport::default();
    // Labels waiting for their time: (due, key, payload).
    let mut pending: std::collections::VecDeque<(Instant, String, String)> = Default::default();
    for i in 0..count {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        if rate > 0 {
            let due = started + Duration::from_secs_f64(i as f64 / rate as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let key = generator.event(i, &mut payload);
        send(&producer, topic, &key, &payload)?;
        report.produced += 1;
        let is_malformed = malformed_every > 0 && i % malformed_every == malformed_every - 1;
        report.malformed += u64::from(is_malformed);
        if let Some(feed) = &labels {
            let missing =
                feed.missing_every > 0 && i % feed.missing_every == feed.missing_every - 1;
            if !is_malformed && !missing {
                let label = format!(
                    "{{\"event_id\":\"{}\",\"label\":{}}}",
                    event_id(seed, i),
                    generator.last_label()
                );
                pending.push_back((Instant::now() + feed.delay, key, label));
            }
            while pending
                .front()
                .is_some_and(|(due, _, _)| *due <= Instant::now())
            {
                let (_, key, label) = pending.pop_front().expect("front");
                send(&producer, &feed.topic, &key, label.as_bytes())?;
                report.labels += 1;
            }
        }
    }
    // The labels still due, each at its time (or at once when stopped).
    if let Some(feed) = &labels {
        for (due, key, label) in pending {
            if !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            send(&producer, &feed.topic, &key, label.as_bytes())?;
            report.labels += 1;
        }
    }
    producer
        .flush(Duration::from_secs(30))
        .context("flushing generated events")?;
    Ok(report)
}

/// Hands one record to the producer, waiting while its queue is full.
fn send(
    producer: &ThreadedProducer<DefaultProducerContext>,
    topic: &str,
    key: &str,
    payload: &[u8],
) -> anyhow::Result<()> {
    let mut record = BaseRecord::to(topic).key(key.as_bytes()).payload(payload);
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((e, _)) => return Err(e).context("producing an event"),
        }
    }
}

/// A tiny seeded generator (SplitMix64) with Box–Muller normals: enough for simulated sensors,
/// and no dependency.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    fn uniform(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed4_writes_what_format_writes() {
        let mut rng = SplitMix64(3);
        for v in [
            0.0,
            1.5,
            -1.5,
            0.00004,
            -2.00005,
            1234.56789,
            -0.1234,
            99999.99996,
        ] {
            let mut out = Vec::new();
            write_fixed4(&mut out, v);
            let text = String::from_utf8(out).unwrap();
            let parsed: f64 = text.parse().unwrap();
            assert!((parsed - v).abs() <= 0.00005 + 1e-9, "{v} -> {text}");
            assert_eq!(text.split('.').nth(1).map(str::len), Some(4), "{text}");
        }
        // Away from rounding ties, exactly what `{:.4}` writes.
        for _ in 0..10_000 {
            let v = (rng.uniform() - 0.5) * 2000.0;
            let mut out = Vec::new();
            write_fixed4(&mut out, v);
            let frac = (v.abs() * 10_000.0).fract();
            if (frac - 0.5).abs() > 1e-6 && format!("{v:.4}") != "-0.0000" {
                assert_eq!(String::from_utf8(out).unwrap(), format!("{v:.4}"));
            }
        }
    }

    #[test]
    fn events_are_valid_json_with_every_sensor_and_drift_moves_the_mean() {
        let options = GenOptions {
            drift_after: Some(2000),
            drift_shift_std: 2.0,
            fault_rate: 0.0,
            ..GenOptions::default()
        };
        let mut g = EventGenerator::new(options, 0).expect("generator");
        let mut buf = Vec::new();
        let (mut before, mut after) = (0.0, 0.0);
        for i in 0..4000 {
            g.event(i, &mut buf);
            let v: serde_json::Value = serde_json::from_slice(&buf).expect("valid JSON");
            assert_eq!(v.as_object().expect("object").len(), 3 + g.sensors().len());
            assert_eq!(v["event_id"], event_id(1, i).as_str());
            let t = v["temperature"].as_f64().expect("temperature");
            if i < 2000 {
                before += t
            } else {
                after += t
            }
        }
        let shift = (after - before) / 2000.0;
        assert!((shift - 6.0).abs() < 0.5, "2 std of 3.0 = 6.0, got {shift}");
    }

    #[test]
    fn malformed_every_n_gives_invalid_events() {
        let options = GenOptions {
            malformed_every: 10,
            ..GenOptions::default()
        };
        let mut g = EventGenerator::new(options, 0).expect("generator");
        let mut buf = Vec::new();
        for i in 0..100 {
            g.event(i, &mut buf);
            let valid = serde_json::from_slice::<serde_json::Value>(&buf)
                .is_ok_and(|v| v.get("device_id").is_some() && v.get("humidity").is_some());
            assert_eq!(
                valid,
                i % 10 != 9,
                "event {i}: {}",
                String::from_utf8_lossy(&buf)
            );
        }
    }
}
