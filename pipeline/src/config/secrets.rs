//! Secrets in Kafka properties: a value may name where the secret lives instead of holding it.
use crate::config::Settings;

impl Settings {
    /// Kafka property values may name where a secret lives instead of holding it, as Kafka's
    /// config providers do: `${file:/run/secrets/kafka-password}` (the file's contents, without
    /// a trailing newline) or `${env:KAFKA_PASSWORD}`. Returns one problem per reference that
    /// cannot be resolved; a problem names the property and where it looked, never a value.
    pub(crate) fn resolve_secret_references(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        for (section, map) in [
            ("common", &mut self.kafka.common),
            ("consumer", &mut self.kafka.consumer),
            ("producer", &mut self.kafka.producer),
        ] {
            for (key, value) in map.iter_mut() {
                let Some(reference) = value.strip_prefix("${").and_then(|v| v.strip_suffix('}'))
                else {
                    continue;
                };
                let resolved = match reference.split_once(':') {
                    Some(("file", path)) => std::fs::read_to_string(path)
                        .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
                        .map_err(|e| format!("cannot read {path}: {e}")),
                    Some(("env", name)) => std::env::var(name)
                        .map_err(|_| format!("environment variable {name} is not set")),
                    _ => Err(format!(
                        "unknown reference ${{{reference}}}: use ${{file:PATH}} or ${{env:NAME}}"
                    )),
                };
                match resolved {
                    Ok(secret) => *value = secret,
                    Err(why) => problems.push(format!("kafka.{section} \"{key}\": {why}")),
                }
            }
        }
        problems
    }
}
