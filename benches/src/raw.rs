//! The raw-client half: each backend's own client publishing 64-byte
//! messages to one subscriber, first awaiting each message, then with the
//! client's own batching or pipelining.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt, ready};
use futures::stream::StreamExt;

use crate::load::{self, Burst, Payloads, Rig, Sink};
use crate::{Error, Options, RawFigures};

/// Messages sent and not yet received at most during a throughput run.
const WINDOW: u64 = 32_768;
/// Messages per pipeline or flush in the batched mode.
const PIPELINE: usize = 256;

/// A channel name of its own for each rig.
fn channel() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "bench-raw-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Makes the sink and subscriber of one mode (`batched` or not).
type Connect<'a> = Box<dyn Fn(bool) -> BoxFuture<'a, Result<(Box<dyn Sink>, Payloads), Error>> + 'a>;

/// Runs the raw half against the server `uri` names: `memory://` (the
/// in-process transport), `nats://host:port`, `redis://host:port`,
/// `kafka://host:port` (with the `kafka` feature) or `zenoh://` (two peers
/// on loopback, whatever the rest of the URI says).
pub async fn raw_half(uri: &str, options: &Options) -> Result<RawFigures, Error> {
    let (scheme, rest) = uri.split_once("://").unwrap_or((uri, ""));
    let address = rest.split(['?', '/']).next().unwrap_or("").to_owned();
    match scheme {
        "memory" => {
            measure(
                "coord-core MemoryTransport",
                "none (in-process channel)",
                memory(),
                options,
            )
            .await
        }
        "nats" => {
            let url = format!("nats://{address}");
            measure(
                "async-nats 0.51",
                "publish without flush; flush every 256",
                nats(url),
                options,
            )
            .await
        }
        "redis" => {
            let url = format!("redis://{address}");
            measure("redis-rs 1.8", "pipelines of 256 PUBLISH", redis(url), options).await
        }
        #[cfg(feature = "kafka")]
        "kafka" => {
            let batching = "linger.ms=5, deliveries not awaited";
            measure("rdkafka 0.39", batching, kafka::connect(address), options).await
        }
        "zenoh" => measure("zenoh 1.10", "automatic batching (express off)", zenoh(), options).await,
        _ => Err(Error::Unsupported(uri.to_owned())),
    }
}

/// Throughput of both modes, then latency of the batched one.
async fn measure(client: &str, batching: &str, connect: Connect<'_>, options: &Options) -> Result<RawFigures, Error> {
    let burst = |flush_every| Burst {
        events: options.events(),
        max_time: options.max_burst_time(),
        window: WINDOW,
        flush_every,
    };
    let (sink, payloads) = connect(false).await?;
    let mut rig = Rig::new(sink, vec![payloads]);
    let unbatched = load::throughput(&mut rig, options, burst(1)).await?;
    drop(rig);
    let (sink, payloads) = connect(true).await?;
    let mut rig = Rig::new(sink, vec![payloads]);
    let batched = load::throughput(&mut rig, options, burst(PIPELINE as u64)).await?;
    let latency = load::latencies(&mut rig, options, batched.per_s.median).await?;
    Ok(RawFigures {
        client: client.to_owned(),
        unbatched,
        batched,
        batching: batching.to_owned(),
        latency,
    })
}

/// coord-core's in-memory transport, bare: it has no batching of its own.
fn memory() -> Connect<'static> {
    use coord::coord_core::transport::memory::MemoryNetwork;
    use coord::coord_core::transport::{Channel, Received, Transport};
    use coord::{Namespace, TransportDyn};

    struct MemorySink(std::sync::Arc<dyn TransportDyn>, Channel);
    impl Sink for MemorySink {
        fn send(&mut self, payload: Bytes) -> BoxFuture<'_, Result<(), Error>> {
            async move { Ok(self.0.publish_dyn(&self.1, payload).await?) }.boxed()
        }
        fn flush(&mut self) -> BoxFuture<'_, Result<(), Error>> {
            ready(Ok(())).boxed()
        }
    }
    Box::new(|_batched| {
        async move {
            let network = MemoryNetwork::with_limits(1 << 20, 2 * WINDOW as usize);
            let (sender, receiver) = (network.connect(), network.connect());
            let channel = Channel::all(&Namespace::new(channel())?);
            let subscription = receiver.subscribe(&channel).await?;
            let payloads = subscription
                .filter_map(move |item| {
                    let _keep = &receiver;
                    ready(match item {
                        Received::Frame(frame) => Some(frame),
                        _ => None,
                    })
                })
                .boxed();
            let sink: Box<dyn Sink> = Box::new(MemorySink(std::sync::Arc::new(sender), channel));
            Ok((sink, payloads))
        }
        .boxed()
    })
}

/// async-nats: unbatched is publish then flush (the message is written
/// before the next); batched lets the client buffer and write in bulk.
fn nats(url: String) -> Connect<'static> {
    struct NatsSink {
        client: async_nats::Client,
        subject: String,
        batched: bool,
    }
    impl Sink for NatsSink {
        fn send(&mut self, payload: Bytes) -> BoxFuture<'_, Result<(), Error>> {
            async move {
                self.client
                    .publish(self.subject.clone(), payload)
                    .await
                    .map_err(|e| Error::client("async-nats", e))?;
                if !self.batched {
                    self.flush().await?;
                }
                Ok(())
            }
            .boxed()
        }
        fn flush(&mut self) -> BoxFuture<'_, Result<(), Error>> {
            async move { self.client.flush().await.map_err(|e| Error::client("async-nats", e)) }.boxed()
        }
    }
    Box::new(move |batched| {
        let url = url.clone();
        async move {
            let connect = async || {
                async_nats::connect(&url)
                    .await
                    .map_err(|e| Error::client("async-nats", e))
            };
            let (client, listener) = (connect().await?, connect().await?);
            let subject = channel();
            let subscriber = listener
                .subscribe(subject.clone())
                .await
                .map_err(|e| Error::client("async-nats", e))?;
            listener.flush().await.map_err(|e| Error::client("async-nats", e))?;
            let payloads = subscriber
                .map(move |message| {
                    let _keep = &listener;
                    message.payload
                })
                .boxed();
            let sink: Box<dyn Sink> = Box::new(NatsSink {
                client,
                subject,
                batched,
            });
            Ok((sink, payloads))
        }
        .boxed()
    })
}

/// redis-rs: unbatched awaits each PUBLISH; batched sends pipelines.
fn redis(url: String) -> Connect<'static> {
    struct RedisSink {
        connection: redis::aio::MultiplexedConnection,
        channel: String,
        pipe: redis::Pipeline,
        queued: usize,
        batched: bool,
    }
    impl Sink for RedisSink {
        fn send(&mut self, payload: Bytes) -> BoxFuture<'_, Result<(), Error>> {
            async move {
                self.pipe.cmd("PUBLISH").arg(&self.channel).arg(&payload[..]).ignore();
                self.queued += 1;
                if !self.batched || self.queued >= PIPELINE {
                    self.flush().await?;
                }
                Ok(())
            }
            .boxed()
        }
        fn flush(&mut self) -> BoxFuture<'_, Result<(), Error>> {
            async move {
                if self.queued > 0 {
                    self.pipe
                        .exec_async(&mut self.connection)
                        .await
                        .map_err(|e| Error::client("redis-rs", e))?;
                    self.pipe.clear();
                    self.queued = 0;
                }
                Ok(())
            }
            .boxed()
        }
    }
    Box::new(move |batched| {
        let url = url.clone();
        async move {
            let failed = |e: redis::RedisError| Error::client("redis-rs", e);
            let client = redis::Client::open(url.as_str()).map_err(failed)?;
            let connection = client.get_multiplexed_async_connection().await.map_err(failed)?;
            let mut pubsub = client.get_async_pubsub().await.map_err(failed)?;
            let name = channel();
            pubsub.subscribe(&name).await.map_err(failed)?;
            let payloads = pubsub
                .into_on_message()
                .map(|message| Bytes::copy_from_slice(message.get_payload_bytes()))
                .boxed();
            let sink: Box<dyn Sink> = Box::new(RedisSink {
                connection,
                channel: name,
                pipe: redis::pipe(),
                queued: 0,
                batched,
            });
            Ok((sink, payloads))
        }
        .boxed()
    })
}

/// Zenoh: two peers on loopback, one listening, one connecting; unbatched
/// is an express publisher (each message its own batch on the link),
/// batched the default publisher (Zenoh batches what queues up).
fn zenoh() -> Connect<'static> {
    use zenoh::qos::CongestionControl;

    struct ZenohSink {
        publisher: zenoh::pubsub::Publisher<'static>,
        _session: zenoh::Session,
    }
    impl Sink for ZenohSink {
        fn send(&mut self, payload: Bytes) -> BoxFuture<'_, Result<(), Error>> {
            async move { self.publisher.put(payload).await.map_err(|e| Error::client("zenoh", e)) }.boxed()
        }
        fn flush(&mut self) -> BoxFuture<'_, Result<(), Error>> {
            ready(Ok(())).boxed()
        }
    }
    Box::new(|batched| {
        async move {
            let failed = |e: zenoh::Error| Error::client("zenoh", e);
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .map_err(|e| Error::client("zenoh", e))?
                .port();
            let config = |key: &str| -> Result<zenoh::Config, Error> {
                let mut config = zenoh::Config::default();
                config
                    .insert_json5(key, &format!("[\"tcp/127.0.0.1:{port}\"]"))
                    .map_err(failed)?;
                config
                    .insert_json5("scouting/multicast/enabled", "false")
                    .map_err(failed)?;
                Ok(config)
            };
            let publishing = zenoh::open(config("listen/endpoints")?).await.map_err(failed)?;
            let subscribing = zenoh::open(config("connect/endpoints")?).await.map_err(failed)?;
            let key = channel();
            let subscriber = subscribing.declare_subscriber(key.clone()).await.map_err(failed)?;
            let publisher = publishing
                .declare_publisher(key)
                .congestion_control(CongestionControl::Block)
                .express(!batched)
                .await
                .map_err(failed)?;
            // Until the subscription has reached the publishing peer.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let payloads = futures::stream::unfold((subscriber, subscribing), |(subscriber, session)| async move {
                let sample = subscriber.recv_async().await.ok()?;
                let payload = Bytes::from(sample.payload().to_bytes().into_owned());
                Some((payload, (subscriber, session)))
            })
            .boxed();
            let sink: Box<dyn Sink> = Box::new(ZenohSink {
                publisher,
                _session: publishing,
            });
            Ok((sink, payloads))
        }
        .boxed()
    })
}

/// rdkafka against a Kafka-protocol broker.
#[cfg(feature = "kafka")]
mod kafka {
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use futures::future::{BoxFuture, FutureExt, ready};
    use futures::stream::StreamExt;
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};
    use rdkafka::producer::{FutureProducer, FutureRecord};
    use rdkafka::util::Timeout;
    use rdkafka::{Message, Offset, TopicPartitionList};

    use super::{Connect, channel};
    use crate::Error;
    use crate::load::Sink;

    fn failed(error: KafkaError) -> Error {
        Error::client("rdkafka", error)
    }

    /// Unbatched awaits each delivery report (linger.ms=0); batched queues
    /// every message in librdkafka (linger.ms=5) and leaves the reports.
    struct KafkaSink {
        producer: FutureProducer,
        topic: String,
        batched: bool,
    }

    impl Sink for KafkaSink {
        fn send(&mut self, payload: Bytes) -> BoxFuture<'_, Result<(), Error>> {
            async move {
                if !self.batched {
                    let record = FutureRecord::<(), [u8]>::to(&self.topic).payload(&payload[..]);
                    self.producer
                        .send(record, Timeout::After(Duration::from_secs(5)))
                        .await
                        .map_err(|(error, _)| failed(error))?;
                    return Ok(());
                }
                loop {
                    let record = FutureRecord::<(), [u8]>::to(&self.topic).payload(&payload[..]);
                    match self.producer.send_result(record) {
                        Ok(_delivery) => return Ok(()),
                        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                        Err((error, _)) => return Err(failed(error)),
                    }
                }
            }
            .boxed()
        }

        fn flush(&mut self) -> BoxFuture<'_, Result<(), Error>> {
            ready(Ok(())).boxed()
        }
    }

    pub(super) fn connect(servers: String) -> Connect<'static> {
        Box::new(move |batched| {
            let servers = servers.clone();
            async move {
                let mut common = ClientConfig::new();
                common
                    .set("bootstrap.servers", &servers)
                    .set("socket.nagle.disable", "true");
                let topic = channel();
                let admin: AdminClient<DefaultClientContext> = common.create().map_err(failed)?;
                let new = NewTopic::new(&topic, 1, TopicReplication::Fixed(1));
                for result in admin
                    .create_topics([&new], &AdminOptions::new())
                    .await
                    .map_err(failed)?
                {
                    result.map_err(|(_, code)| Error::client("rdkafka", code))?;
                }
                let producer: FutureProducer = common
                    .clone()
                    .set("acks", "1")
                    .set("enable.idempotence", "false")
                    .set("linger.ms", if batched { "5" } else { "0" })
                    .set("queue.buffering.max.messages", "1000000")
                    .create()
                    .map_err(failed)?;
                let consumer: StreamConsumer = common
                    .clone()
                    .set("group.id", &topic)
                    .set("enable.auto.commit", "false")
                    .set("fetch.wait.max.ms", "10")
                    .create()
                    .map_err(failed)?;
                let mut assignment = TopicPartitionList::new();
                assignment
                    .add_partition_offset(&topic, 0, Offset::Beginning)
                    .map_err(failed)?;
                consumer.assign(&assignment).map_err(failed)?;
                let payloads = futures::stream::unfold(Arc::new(consumer), |consumer| async move {
                    let payload = match consumer.recv().await {
                        Ok(message) => Bytes::copy_from_slice(message.payload().unwrap_or_default()),
                        Err(_) => Bytes::new(),
                    };
                    Some((payload, consumer))
                })
                .filter(|payload| ready(!payload.is_empty()))
                .boxed();
                let sink: Box<dyn Sink> = Box::new(KafkaSink {
                    producer,
                    topic,
                    batched,
                });
                Ok((sink, payloads))
            }
            .boxed()
        })
    }
}
