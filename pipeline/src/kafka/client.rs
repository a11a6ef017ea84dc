//! The client properties every Kafka client of driftline starts from: `kafka.common`, then the
//! role's own section, then the brokers. Each client adds what it manages itself on top.
use rdkafka::ClientConfig;

use crate::config::Settings;

/// Which section of `[kafka]` a client takes its own properties from.
#[derive(Debug, Clone, Copy)]
pub enum Role {
    Consumer,
    Producer,
}

pub fn client_config(settings: &Settings, role: Role) -> ClientConfig {
    let k = &settings.kafka;
    let own = match role {
        Role::Consumer => &k.consumer,
        Role::Producer => &k.producer,
    };
    let mut config = ClientConfig::new();
    for (key, value) in k.common.iter().chain(own) {
        config.set(key, value);
    }
    config.set("bootstrap.servers", &k.bootstrap_servers);
    config
}
