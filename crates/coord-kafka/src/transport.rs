//! [`KafkaTransport`]: coord frames as Kafka records on the topic
//! `<namespace>.all` (and, with `per-node-topics`, `<namespace>.node.<id>`),
//! read by every node through a consumer of its own that is assigned every
//! partition: a true broadcast, never a consumer group's load balancing.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use coord_core::transport::{Capabilities, Channel, Received, Subscription, Target, TransportHealth, until_closed};
use coord_core::{Error, ErrorKind, Result, Transport};
use futures::StreamExt;
use rand::Rng;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::KafkaConfig;
use crate::connection::{ConnectionState, KafkaContext, Role};

/// The backend's name in capabilities, errors and reports.
const BACKEND: &str = "kafka";
/// How long `close` waits for queued frames to be flushed, and for each
/// client to shut down.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

type Producer = FutureProducer<KafkaContext>;
type Admin = AdminClient<KafkaContext>;
type Reader = StreamConsumer<KafkaContext>;

/// A Kafka producer plus one consumer per subscribed topic, carrying coord
/// frames.
///
/// Every consumer is assigned every partition of its topic by hand,
/// starting at the high watermark read when subscribing, so each node reads
/// every frame (a consumer group shared by the nodes would split them
/// between nodes). librdkafka reconnects by itself with bounded exponential
/// backoff; a consumer that loses its brokers and gets them back yields one
/// `Lagged` on each of its subscriptions.
pub struct KafkaTransport {
    config: KafkaConfig,
    servers: String,
    state: Arc<ConnectionState>,
    shared: Arc<Shared>,
    producer: Mutex<Option<Producer>>,
    /// The record key of every frame this transport publishes: all of them
    /// go to one partition, which keeps them in publish order.
    key: String,
    readers: tokio::sync::Mutex<HashMap<String, ReaderHandle>>,
    /// Per-node topics this transport created, deleted at close.
    own_topics: Mutex<Vec<String>>,
    closed: watch::Sender<bool>,
}

impl std::fmt::Debug for KafkaTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaTransport")
            .field("servers", &self.servers)
            .field("max_payload", &self.config.max_payload)
            .field("per_node_topics", &self.config.per_node_topics)
            .finish_non_exhaustive()
    }
}

/// What the transport and its reader tasks share: topic creation.
struct Shared {
    config: KafkaConfig,
    servers: String,
    admin: Mutex<Option<Arc<Admin>>>,
    /// Topics known to exist (forgotten when the broker says otherwise).
    known: Mutex<HashSet<String>>,
}

/// One topic's consumer and who its frames go to.
struct ReaderHandle {
    routes: Arc<Routes>,
    consumer: Arc<Reader>,
    task: JoinHandle<()>,
}

/// The subscriptions of one topic.
#[derive(Default)]
struct Routes(Mutex<Vec<Route>>);

struct Route {
    tx: mpsc::Sender<Received>,
    /// Frames were dropped for this subscription (it was full, or the
    /// consumer lost its brokers): `Lagged` goes out before the next frame.
    lagged: bool,
}

impl Routes {
    fn add(&self, tx: mpsc::Sender<Received>) {
        self.0
            .lock()
            .expect("kafka routes lock")
            .push(Route { tx, lagged: false });
    }

    /// Gives `frame` to every subscription that has room; the others drop
    /// it and will see `Lagged`. Forgets ended subscriptions.
    fn deliver(&self, frame: &Bytes) {
        self.0.lock().expect("kafka routes lock").retain_mut(|route| {
            if route.lagged {
                match route.tx.try_send(Received::Lagged) {
                    Ok(()) => route.lagged = false,
                    Err(mpsc::error::TrySendError::Full(_)) => return true,
                    Err(mpsc::error::TrySendError::Closed(_)) => return false,
                }
            }
            match route.tx.try_send(Received::Frame(frame.clone())) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    route.lagged = true;
                    true
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
    }

    /// Frames may have been lost for every subscription: each yields `Lagged`.
    fn lagged(&self) {
        self.0.lock().expect("kafka routes lock").retain_mut(|route| {
            match route.tx.try_send(Received::Lagged) {
                Ok(()) => route.lagged = false,
                Err(mpsc::error::TrySendError::Full(_)) => route.lagged = true,
                Err(mpsc::error::TrySendError::Closed(_)) => return false,
            }
            true
        });
    }
}

fn unavailable(operation: &'static str, message: String) -> Error {
    Error::new(ErrorKind::Unavailable, operation, message).temporary()
}

fn closed_error(operation: &'static str) -> Error {
    Error::new(ErrorKind::Closed, operation, "the kafka transport is closed")
}

/// A client's settings: the config's common properties, those of `role`,
/// then the raw `properties`.
fn client_config(config: &KafkaConfig, specific: &[(&str, String)]) -> ClientConfig {
    let mut client = ClientConfig::new();
    for (key, value) in config.common_properties() {
        client.set(key, value);
    }
    for (key, value) in specific {
        client.set(*key, value.clone());
    }
    for (key, value) in &config.properties {
        client.set(key.clone(), value.clone());
    }
    client
}

/// A client that librdkafka refused to create: a setting is wrong.
fn creation_error(servers: &str, error: KafkaError) -> Error {
    Error::new(
        ErrorKind::Config,
        "kafka connect",
        format!(
            "librdkafka refused the kafka client settings for {servers}: {error}; check `kafka.properties` \
             and the TLS/SASL settings"
        ),
    )
    .with_source(error)
}

fn ms(duration: Duration) -> String {
    duration.as_millis().max(1).to_string()
}

impl Shared {
    fn admin(&self) -> Result<Arc<Admin>> {
        self.admin
            .lock()
            .expect("kafka admin lock")
            .clone()
            .ok_or_else(|| closed_error("kafka topic"))
    }

    fn forget(&self, topic: &str) {
        self.known.lock().expect("kafka topics lock").remove(topic);
    }

    /// Creates `topic` unless it is known to exist; returns whether this
    /// call created it.
    async fn ensure_topic(&self, topic: &str) -> Result<bool> {
        if self.known.lock().expect("kafka topics lock").contains(topic) {
            return Ok(false);
        }
        let admin = self.admin()?;
        let timeout = self.config.connect_timeout;
        let options = AdminOptions::new()
            .request_timeout(Some(timeout))
            .operation_timeout(Some(timeout));
        let new = NewTopic::new(
            topic,
            self.config.partitions,
            TopicReplication::Fixed(self.config.replication_factor),
        );
        let created = tokio::time::timeout(timeout + Duration::from_secs(1), admin.create_topics([&new], &options))
            .await
            .map_err(|_| {
                unavailable(
                    "kafka create topic",
                    format!(
                        "creating topic {topic} on the kafka brokers at {} got no answer within {timeout:?}",
                        self.servers
                    ),
                )
            })?
            .map_err(|error| {
                unavailable(
                    "kafka create topic",
                    format!(
                        "creating topic {topic} on the kafka brokers at {} failed: {error}",
                        self.servers
                    ),
                )
                .with_source(error)
            })?;
        let mut made = false;
        for result in created {
            match result {
                Ok(_) => made = true,
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((
                    _,
                    code @ (RDKafkaErrorCode::TopicAuthorizationFailed | RDKafkaErrorCode::ClusterAuthorizationFailed),
                )) => {
                    return Err(Error::new(
                        ErrorKind::Unauthorized,
                        "kafka create topic",
                        format!(
                            "the kafka brokers at {} refuse to create topic {topic}: {code}; create it beforehand \
                             or grant this user CREATE",
                            self.servers
                        ),
                    ));
                }
                Err((_, code)) => {
                    return Err(unavailable(
                        "kafka create topic",
                        format!(
                            "creating topic {topic} on the kafka brokers at {} failed: {code}",
                            self.servers
                        ),
                    ));
                }
            }
        }
        if made {
            tracing::info!(servers = %self.servers, topic, partitions = self.config.partitions, "kafka topic created");
        }
        self.known.lock().expect("kafka topics lock").insert(topic.to_owned());
        Ok(made)
    }

    async fn delete_topics(&self, topics: &[String]) {
        let Ok(admin) = self.admin() else { return };
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        let options = AdminOptions::new().request_timeout(Some(CLOSE_TIMEOUT));
        match tokio::time::timeout(CLOSE_TIMEOUT, admin.delete_topics(&names, &options)).await {
            Ok(Ok(_)) => tracing::debug!(servers = %self.servers, ?topics, "kafka per-node topics deleted"),
            Ok(Err(error)) => tracing::warn!(servers = %self.servers, ?topics, %error, "kafka topics not deleted"),
            Err(_) => tracing::warn!(servers = %self.servers, ?topics, "kafka topic deletion timed out"),
        }
    }
}

impl KafkaTransport {
    /// Connects to the cluster at `config`'s bootstrap servers: checks that
    /// a broker answers (fetching the cluster's metadata), then keeps a
    /// producer and an admin client; consumers are made per subscribed topic.
    ///
    /// # Errors
    /// - `Config` for invalid settings, or properties librdkafka refuses.
    /// - `Unauthorized` when SASL authentication or the TLS handshake fails.
    /// - `Unavailable` (temporary) when no broker answers within
    ///   `connect-timeout`. The message names the brokers and the cause.
    pub async fn connect(config: &KafkaConfig) -> Result<Self> {
        config.validate()?;
        let servers = config.servers();
        let state = ConnectionState::new(&servers);
        let producer: Producer = client_config(
            config,
            &[
                ("acks", config.acks.clone()),
                ("linger.ms", config.linger.as_millis().to_string()),
                ("message.timeout.ms", ms(config.publish_timeout)),
                ("queue.buffering.max.messages", config.queue_capacity.to_string()),
                ("enable.idempotence", "false".into()),
                // Connect to the brokers at once, not at the first frame: a
                // started transport keeps the connections it has.
                ("enable.sparse.connections", "false".into()),
            ],
        )
        .create_with_context(state.context(Role::Producer))
        .map_err(|error| creation_error(&servers, error))?;
        let probe = producer.clone();
        let timeout = config.connect_timeout;
        let reached = tokio::task::spawn_blocking(move || probe.client().fetch_metadata(None, timeout).map(drop));
        let reached = tokio::select! {
            reached = reached => {
                reached.map_err(|error| Error::new(ErrorKind::Unexpected, "kafka connect", error.to_string()))?
            }
            cause = state.refused() => {
                drop(producer);
                return Err(Error::new(
                    ErrorKind::Unauthorized,
                    "kafka connect",
                    format!(
                        "the kafka brokers at {servers} refused this client: {cause}; check `kafka.sasl` \
                         (mechanism, user, password) and `kafka.tls`"
                    ),
                ));
            }
        };
        if let Err(error) = reached {
            let cause = state.last_error();
            drop(producer);
            return Err(connect_error(&servers, timeout, error, cause));
        }
        let admin: Admin = client_config(config, &[])
            .create_with_context(state.context(Role::Admin))
            .map_err(|error| creation_error(&servers, error))?;
        let key = format!("{:016x}", rand::rng().random::<u64>());
        tracing::info!(%servers, "kafka connected");
        Ok(KafkaTransport {
            config: config.clone(),
            servers: servers.clone(),
            state,
            shared: Arc::new(Shared {
                config: config.clone(),
                servers,
                admin: Mutex::new(Some(Arc::new(admin))),
                known: Mutex::new(HashSet::new()),
            }),
            producer: Mutex::new(Some(producer)),
            key,
            readers: tokio::sync::Mutex::new(HashMap::new()),
            own_topics: Mutex::new(Vec::new()),
            closed: watch::channel(false).0,
        })
    }

    fn topic(channel: &Channel) -> String {
        channel.joined('.')
    }

    fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    fn producer(&self) -> Result<Producer> {
        self.producer
            .lock()
            .expect("kafka producer lock")
            .clone()
            .ok_or_else(|| closed_error("kafka publish"))
    }

    /// Has the producer reach the leaders of `topic`'s partitions now (by
    /// reading their watermarks), so that the first frame does not wait
    /// for a connection and a running transport keeps the connections it
    /// started with.
    async fn warm_up_producer(&self, topic: &str) {
        let Ok(producer) = self.producer() else { return };
        let (name, timeout) = (topic.to_owned(), self.config.connect_timeout);
        let warmed = tokio::task::spawn_blocking(move || {
            let partitions = 0..producer.client().fetch_metadata(Some(&name), timeout).map_or(1, |m| {
                m.topics().first().map_or(1, |t| t.partitions().len().max(1) as i32)
            });
            for partition in partitions {
                producer.client().fetch_watermarks(&name, partition, timeout)?;
            }
            Ok::<(), KafkaError>(())
        });
        if let Ok(Err(error)) = warmed.await {
            tracing::debug!(servers = %self.servers, topic, %error, "kafka producer not warmed up");
        }
    }

    /// A consumer of `topic` assigned every partition at its high watermark,
    /// and the task that hands its frames to `routes`.
    async fn start_reader(&self, topic: &str, routes: Arc<Routes>) -> Result<ReaderHandle> {
        let group = format!("coord-{}-{}", self.key, topic);
        let consumer: Reader = client_config(
            &self.config,
            &[
                // librdkafka needs a group to assign partitions; this one is
                // this transport's alone, and nothing is ever committed to it.
                ("group.id", group),
                ("enable.auto.commit", "false".into()),
                ("enable.auto.offset.store", "false".into()),
                // Only after an outage (the topic was recreated, or records
                // expired): read what there is rather than skip it.
                ("auto.offset.reset", "earliest".into()),
                ("fetch.wait.max.ms", ms(self.config.fetch_wait_max)),
                ("fetch.error.backoff.ms", "50".into()),
                ("enable.partition.eof", "false".into()),
                ("allow.auto.create.topics", "false".into()),
                ("queued.min.messages", "1000".into()),
            ],
        )
        .create_with_context(self.state.context(Role::Consumer))
        .map_err(|error| creation_error(&self.servers, error))?;
        let consumer = Arc::new(consumer);
        let assigning = consumer.clone();
        let (name, timeout, servers) = (topic.to_owned(), self.config.connect_timeout, self.servers.clone());
        tokio::task::spawn_blocking(move || assign_from_high_watermarks(&assigning, &name, timeout, &servers))
            .await
            .map_err(|error| Error::new(ErrorKind::Unexpected, "kafka subscribe", error.to_string()))??;
        let task = tokio::spawn(read(
            consumer.clone(),
            topic.to_owned(),
            routes.clone(),
            self.shared.clone(),
            self.state.watch_losses(),
            self.closed.subscribe(),
        ));
        Ok(ReaderHandle { routes, consumer, task })
    }
}

/// Assigns every partition of `topic` to `consumer`, each at its current
/// high watermark: what is published from now on is read, nothing older.
fn assign_from_high_watermarks(consumer: &Reader, topic: &str, timeout: Duration, servers: &str) -> Result<()> {
    let deadline = std::time::Instant::now() + timeout;
    let failed = |why: String| {
        unavailable(
            "kafka subscribe",
            format!("cannot read the partitions of topic {topic} from the kafka brokers at {servers}: {why}"),
        )
    };
    loop {
        let attempt = (|| {
            let metadata = consumer
                .fetch_metadata(Some(topic), timeout)
                .map_err(|e| e.to_string())?;
            let partitions: Vec<i32> = metadata
                .topics()
                .iter()
                .filter(|t| t.name() == topic && t.error().is_none())
                .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                .collect();
            if partitions.is_empty() {
                return Err("the topic has no partitions yet".to_owned());
            }
            let mut assignment = TopicPartitionList::new();
            for partition in partitions {
                let (_, high) = consumer
                    .fetch_watermarks(topic, partition, timeout)
                    .map_err(|e| format!("partition {partition}: {e}"))?;
                assignment
                    .add_partition_offset(topic, partition, Offset::Offset(high))
                    .map_err(|e| e.to_string())?;
            }
            consumer.assign(&assignment).map_err(|e| e.to_string())?;
            // Ask the group coordinator once (nothing is committed): the
            // consumer then has every connection it keeps while it runs,
            // instead of opening the coordinator's lazily.
            if let Err(error) = consumer.committed(timeout) {
                tracing::debug!(topic, %error, "kafka group coordinator not reached yet");
            }
            Ok(())
        })();
        match attempt {
            Ok(()) => return Ok(()),
            Err(why) if std::time::Instant::now() >= deadline => return Err(failed(why)),
            Err(why) => {
                tracing::debug!(topic, %why, "kafka partitions not ready; retrying");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// How long after an outage the reader checks that its positions still
/// exist on the broker.
const RECOVERY_CHECKS_FOR: Duration = Duration::from_secs(60);
/// How often it checks meanwhile.
const RECOVERY_CHECK_EVERY: Duration = Duration::from_millis(500);

/// Hands the frames of `consumer` to `routes` until the transport closes;
/// each time frames may have been lost (the consumer got its brokers back,
/// or reported an error), every subscription yields `Lagged`, and for a
/// while the reader checks that its positions are not beyond the end of
/// their partitions (see [`rewind_if_beyond_end`]).
async fn read(
    consumer: Arc<Reader>,
    topic: String,
    routes: Arc<Routes>,
    shared: Arc<Shared>,
    mut losses: watch::Receiver<u64>,
    closed: watch::Receiver<bool>,
) {
    let mut pause_after_error = false;
    let mut check_until: Option<tokio::time::Instant> = None;
    let mut checks = tokio::time::interval(RECOVERY_CHECK_EVERY);
    checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stop = until_closed(closed);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            biased;
            () = &mut stop => break,
            changed = losses.changed() => {
                if changed.is_err() {
                    break;
                }
                routes.lagged();
                check_until = Some(tokio::time::Instant::now() + RECOVERY_CHECKS_FOR);
            }
            _ = checks.tick(), if check_until.is_some() => {
                if check_until.is_some_and(|until| tokio::time::Instant::now() > until) {
                    check_until = None;
                    continue;
                }
                let (checked, name) = (consumer.clone(), topic.clone());
                if let Ok(true) = tokio::task::spawn_blocking(move || rewind_if_beyond_end(&checked, &name)).await {
                    routes.lagged();
                }
            }
            message = consumer.recv() => match message {
                Ok(message) => {
                    let frame = Bytes::copy_from_slice(message.payload().unwrap_or_default());
                    routes.deliver(&frame);
                }
                Err(error) => {
                    tracing::warn!(%topic, %error, "kafka consumer error; frames may have been lost");
                    routes.lagged();
                    check_until = Some(tokio::time::Instant::now() + RECOVERY_CHECKS_FOR);
                    if matches!(
                        error.rdkafka_error_code(),
                        Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic)
                    ) {
                        // The broker lost the topic (a broker on memory
                        // storage restarted): make it again.
                        shared.forget(&topic);
                        if let Err(error) = shared.ensure_topic(&topic).await {
                            tracing::debug!(%topic, %error, "kafka topic not recreated yet");
                        }
                    }
                    pause_after_error = true;
                }
            }
        }
        if std::mem::take(&mut pause_after_error) {
            tokio::select! {
                () = &mut stop => break,
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    }
}

/// Moves every position of `consumer` on `topic` that lies beyond its
/// partition's high watermark back to the partition's start. That happens
/// when the topic was deleted and created again (a broker on memory storage
/// restarted): a broker that does not answer such a fetch with "offset out
/// of range" would otherwise keep the reader waiting until the new topic
/// grew past the old position. Returns whether it moved any.
fn rewind_if_beyond_end(consumer: &Reader, topic: &str) -> bool {
    let timeout = Duration::from_secs(1);
    let Ok(positions) = consumer.position() else {
        return false;
    };
    let mut moved = false;
    for element in positions.elements_for_topic(topic) {
        let Offset::Offset(position) = element.offset() else {
            continue;
        };
        let partition = element.partition();
        let Ok((low, high)) = consumer.fetch_watermarks(topic, partition, timeout) else {
            continue;
        };
        if position > high && consumer.seek(topic, partition, Offset::Offset(low), timeout).is_ok() {
            tracing::info!(
                topic,
                partition,
                position,
                high,
                "kafka position beyond the partition's end (topic recreated?); reading from its start"
            );
            moved = true;
        }
    }
    moved
}

/// A failed first contact as coord's error: the backend, the brokers and the cause.
fn connect_error(servers: &str, timeout: Duration, error: KafkaError, cause: Option<String>) -> Error {
    let cause = cause.unwrap_or_else(|| error.to_string());
    let lower = cause.to_ascii_lowercase();
    let (kind, temporary, hint) = if lower.contains("authentication") || lower.contains("sasl") {
        (
            ErrorKind::Unauthorized,
            false,
            "check `kafka.sasl` (mechanism, user, password)",
        )
    } else if lower.contains("ssl") || lower.contains("certificate") {
        (
            ErrorKind::Unauthorized,
            false,
            "check `kafka.tls` (CA, client certificate) and whether the broker's listener speaks TLS",
        )
    } else {
        (
            ErrorKind::Unavailable,
            true,
            "is the broker running and listening there (and advertising an address this node can reach)?",
        )
    };
    let message = format!("cannot reach the kafka brokers at {servers} within {timeout:?}: {cause}; {hint}");
    let error = Error::new(kind, "kafka connect", message).with_source(error);
    if temporary { error.temporary() } else { error }
}

/// Drops a librdkafka client off the async threads (destroying one joins
/// its threads), waiting at most [`CLOSE_TIMEOUT`].
async fn destroy<T: Send + 'static>(what: &'static str, servers: &str, client: T) {
    let dropped = tokio::task::spawn_blocking(move || drop(client));
    if tokio::time::timeout(CLOSE_TIMEOUT, dropped).await.is_err() {
        tracing::warn!(servers, "kafka {what} did not shut down within {CLOSE_TIMEOUT:?}");
    }
}

impl Transport for KafkaTransport {
    fn capabilities(&self) -> Capabilities {
        let mut capabilities = Capabilities::new(BACKEND, self.config.max_payload);
        capabilities.per_node_channels = self.config.per_node_topics;
        capabilities
    }

    async fn publish(&self, channel: &Channel, frame: Bytes) -> Result<()> {
        if self.is_closed() {
            return Err(closed_error("kafka publish"));
        }
        if frame.len() > self.config.max_payload {
            return Err(Error::new(
                ErrorKind::TooLarge,
                "kafka publish",
                format!(
                    "a frame of {} bytes exceeds the kafka max-payload of {} bytes",
                    frame.len(),
                    self.config.max_payload
                ),
            ));
        }
        // No early refusal while the health says "down": with sparse
        // connections librdkafka reconnects to a broker only when it has
        // something to send, so the frame itself must ask; it fails within
        // `publish-timeout` if no broker takes it.
        let producer = self.producer()?;
        let topic = Self::topic(channel);
        if channel.target == Target::All {
            self.shared.ensure_topic(&topic).await?;
        }
        let record = FutureRecord::<[u8], [u8]>::to(&topic)
            .payload(&frame[..])
            .key(self.key.as_bytes());
        let timeout = self.config.publish_timeout;
        let sent = tokio::time::timeout(timeout + Duration::from_millis(500), producer.send(record, timeout)).await;
        match sent {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge), _))) => Err(Error::new(
                ErrorKind::TooLarge,
                "kafka publish",
                format!(
                    "the kafka brokers at {} refuse a frame of {} bytes as too large (`message.max.bytes`)",
                    self.servers,
                    frame.len()
                ),
            )),
            Ok(Err((error, _))) => {
                if matches!(
                    error.rdkafka_error_code(),
                    Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic)
                ) {
                    self.shared.forget(&topic);
                }
                Err(unavailable(
                    "kafka publish",
                    format!("publishing to {topic} on {} failed: {error}", self.servers),
                )
                .with_source(error))
            }
            Err(_) => Err(unavailable(
                "kafka publish",
                format!(
                    "the kafka brokers at {} did not acknowledge a frame on {topic} within {timeout:?}",
                    self.servers
                ),
            )),
        }
    }

    async fn subscribe(&self, channel: &Channel) -> Result<Subscription> {
        if self.is_closed() {
            return Err(closed_error("kafka subscribe"));
        }
        let topic = Self::topic(channel);
        let created = self.shared.ensure_topic(&topic).await?;
        if created && matches!(channel.target, Target::Node(_)) {
            self.own_topics.lock().expect("kafka topics lock").push(topic.clone());
        }
        let (tx, mut rx) = mpsc::channel(self.config.subscription_capacity);
        let mut readers = self.readers.lock().await;
        if self.is_closed() {
            return Err(closed_error("kafka subscribe"));
        }
        match readers.get(&topic) {
            Some(reader) if !reader.task.is_finished() => reader.routes.add(tx),
            _ => {
                let routes = Arc::new(Routes::default());
                routes.add(tx);
                let reader = self.start_reader(&topic, routes).await?;
                self.warm_up_producer(&topic).await;
                if let Some(old) = readers.insert(topic, reader) {
                    destroy("consumer", &self.servers, old.consumer).await;
                }
            }
        }
        drop(readers);
        let frames = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
        Ok(Box::pin(frames.take_until(until_closed(self.closed.subscribe()))))
    }

    fn health(&self) -> TransportHealth {
        if self.is_closed() {
            return TransportHealth::down("the kafka transport is closed", 0, std::time::SystemTime::now());
        }
        self.state.health()
    }

    async fn close(&self) -> Result<()> {
        if self.closed.send_replace(true) {
            return Ok(());
        }
        let readers: Vec<ReaderHandle> = self.readers.lock().await.drain().map(|(_, reader)| reader).collect();
        for reader in readers {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, reader.task).await;
            drop(reader.routes);
            destroy("consumer", &self.servers, reader.consumer).await;
        }
        let own = std::mem::take(&mut *self.own_topics.lock().expect("kafka topics lock"));
        if !own.is_empty() {
            self.shared.delete_topics(&own).await;
        }
        let producer = self.producer.lock().expect("kafka producer lock").take();
        if let Some(producer) = producer {
            let flushed = tokio::task::spawn_blocking(move || {
                let flushed = producer.flush(Timeout::After(CLOSE_TIMEOUT));
                drop(producer);
                flushed
            });
            match tokio::time::timeout(CLOSE_TIMEOUT * 2, flushed).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(error))) => tracing::warn!(servers = %self.servers, %error, "kafka producer flush failed"),
                _ => tracing::warn!(servers = %self.servers, "kafka producer did not shut down in time"),
            }
        }
        let admin = self.shared.admin.lock().expect("kafka admin lock").take();
        if let Some(admin) = admin {
            destroy("admin client", &self.servers, admin).await;
        }
        tracing::debug!(servers = %self.servers, "kafka transport closed");
        Ok(())
    }
}
