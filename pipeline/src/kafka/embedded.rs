//! The embedded broker: librdkafka's in-process MockCluster, for the demo and fast tests.
//! It listens on real 127.0.0.1 ports, so other processes (kcat, Python) can use it too.
//! It lives exactly as long as this value.
use rdkafka::error::KafkaResult;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::ClientConfig;

pub struct EmbeddedBroker {
    // The mock cluster belongs to this client handle; keeping it alive keeps the brokers up.
    handle: BaseProducer,
    bootstrap: String,
}

impl EmbeddedBroker {
    pub fn start(brokers: u32) -> KafkaResult<EmbeddedBroker> {
        let handle: BaseProducer = ClientConfig::new()
            .set("test.mock.num.brokers", brokers.to_string())
            .create()?;
        let bootstrap = match handle.client().mock_cluster() {
            Some(cluster) => cluster.bootstrap_servers(),
            None => {
                return Err(rdkafka::error::KafkaError::ClientCreation(
                    "no mock cluster".into(),
                ))
            }
        };
        // librdkafka delays a new group's first rebalance by 3 s like a real broker; a demo and
        // tests gain nothing from waiting.
        // SAFETY: the pointer comes from a live client handle that owns the mock cluster.
        unsafe {
            let mc = rdkafka_sys::rd_kafka_handle_mock_cluster(handle.client().native_ptr());
            if !mc.is_null() {
                rdkafka_sys::rd_kafka_mock_group_initial_rebalance_delay_ms(mc, 0);
            }
        }
        Ok(EmbeddedBroker { handle, bootstrap })
    }

    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// Creates a topic (the mock broker does not support the admin API's CreateTopics).
    pub fn create_topic(&self, topic: &str, partitions: i32) -> KafkaResult<()> {
        match self.handle.client().mock_cluster() {
            Some(cluster) => cluster.create_topic(topic, partitions, 1),
            None => Err(rdkafka::error::KafkaError::ClientCreation(
                "no mock cluster".into(),
            )),
        }
    }

    /// The cluster itself, for fault injection (request errors, leader moves, latency).
    pub fn mock(
        &self,
    ) -> Option<rdkafka::mocking::MockCluster<'_, rdkafka::producer::DefaultProducerContext>> {
        self.handle.client().mock_cluster()
    }

    /// Takes a broker down (`up = false`) or brings it back, for fault tests.
    pub fn set_broker_up(&self, broker_id: i32, up: bool) -> KafkaResult<()> {
        match self.handle.client().mock_cluster() {
            Some(cluster) if up => cluster.broker_up(broker_id),
            Some(cluster) => cluster.broker_down(broker_id),
            None => Err(rdkafka::error::KafkaError::ClientCreation(
                "no mock cluster".into(),
            )),
        }
    }
}
