//! The ports of the local brokers: [`Ports`] (what `ports.yaml` records of one broker) and
//! [`PortPins`], the ports a manifest pins with Cluster annotations.
//!
//! Unpinned, each port is chosen by the OS when the broker's ports are first recorded.
//! `strom.io/local-kafka-port`, `strom.io/local-controller-port` and
//! `strom.io/local-admin-port` (the admin HTTP listener: `/metrics`, `/readyz`) each give a
//! base port instead: broker `i` listens on base + `i`. Pins that overflow 65535 or whose
//! ranges overlap are refused for the whole Cluster ([`PortPins::from_cluster`]); a pinned port
//! something else holds is refused for the broker that would bind it ([`PortPins::check_free`]),
//! so a broker never starts on a port other than the pinned one.

use std::collections::BTreeMap;

use kube::ResourceExt;
use serde::{Deserialize, Serialize};
use strom_crds::Cluster;

/// Cluster annotation: the Kafka port of broker 0; broker `i` gets this + `i`.
pub const KAFKA_PORT_ANNOTATION: &str = "strom.io/local-kafka-port";
/// Cluster annotation: the controller (metadata quorum) port of broker 0; broker `i` gets
/// this + `i`.
pub const CONTROLLER_PORT_ANNOTATION: &str = "strom.io/local-controller-port";
/// Cluster annotation: the admin HTTP port (`/metrics`, `/readyz`) of broker 0; broker `i`
/// gets this + `i`.
pub const ADMIN_PORT_ANNOTATION: &str = "strom.io/local-admin-port";

/// A broker's ports, recorded once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ports {
    /// The Kafka listener.
    pub kafka: u16,
    /// The admin HTTP listener (`/readyz`).
    pub admin: u16,
    /// The controller listener (metadata quorum).
    pub controller: u16,
}

/// One listener of a broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Listener {
    /// The Kafka listener.
    Kafka,
    /// The controller listener.
    Controller,
    /// The admin HTTP listener.
    Admin,
}

impl Listener {
    const ALL: [Listener; 3] = [Listener::Kafka, Listener::Controller, Listener::Admin];

    /// The annotation that pins it.
    pub fn annotation(self) -> &'static str {
        match self {
            Listener::Kafka => KAFKA_PORT_ANNOTATION,
            Listener::Controller => CONTROLLER_PORT_ANNOTATION,
            Listener::Admin => ADMIN_PORT_ANNOTATION,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Listener::Kafka => "Kafka",
            Listener::Controller => "controller",
            Listener::Admin => "admin",
        }
    }

    /// Its port in `ports`.
    pub fn of(self, ports: &Ports) -> u16 {
        match self {
            Listener::Kafka => ports.kafka,
            Listener::Controller => ports.controller,
            Listener::Admin => ports.admin,
        }
    }
}

/// The base ports a Cluster pins, for brokers `0..replicas`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortPins {
    bases: BTreeMap<Listener, u16>,
    replicas: i32,
}

impl PortPins {
    /// The pins of `cluster`'s annotations, checked for its `spec.replicas` brokers: each a
    /// port number, none going past 65535, no two listeners sharing a port.
    pub fn from_cluster(cluster: &Cluster) -> Result<PortPins, String> {
        let annotations = cluster.annotations();
        let replicas = cluster.spec.replicas.max(1);
        let mut bases = BTreeMap::new();
        for listener in Listener::ALL {
            let Some(value) = annotations.get(listener.annotation()) else {
                continue;
            };
            let base = value
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|port| *port > 0)
                .ok_or_else(|| {
                    format!(
                        "{}={value:?} is not a port number (1-65535)",
                        listener.annotation()
                    )
                })?;
            let last = i64::from(base) + i64::from(replicas) - 1;
            if last > i64::from(u16::MAX) {
                return Err(format!(
                    "{}={base} gives broker {} the {} port {last}, past 65535 (spec.replicas={replicas})",
                    listener.annotation(),
                    replicas - 1,
                    listener.name()
                ));
            }
            bases.insert(listener, base);
        }
        let pins = PortPins { bases, replicas };
        let mut owners: BTreeMap<u16, (Listener, i32)> = BTreeMap::new();
        for broker in 0..replicas {
            for &listener in pins.bases.keys() {
                let Some(port) = pins.port(listener, broker) else {
                    continue;
                };
                if let Some((other, other_broker)) = owners.insert(port, (listener, broker)) {
                    return Err(format!(
                        "port {port} is pinned twice: broker {other_broker}'s {} port ({}={}) \
                         and broker {broker}'s {} port ({}={}); the ranges of {replicas} ports \
                         must not overlap",
                        other.name(),
                        other.annotation(),
                        pins.bases[&other],
                        listener.name(),
                        listener.annotation(),
                        pins.bases[&listener]
                    ));
                }
            }
        }
        Ok(pins)
    }

    /// Whether nothing is pinned.
    pub fn is_empty(&self) -> bool {
        self.bases.is_empty()
    }

    /// The port `listener` of `broker` is pinned to, if it is.
    pub fn port(&self, listener: Listener, broker: i32) -> Option<u16> {
        let base = *self.bases.get(&listener)?;
        let port = i64::from(base) + i64::from(broker);
        u16::try_from(port).ok()
    }

    /// Whether `port` is one some broker of the Cluster is pinned to (an OS-chosen port must
    /// not take it).
    pub fn reserves(&self, port: u16) -> bool {
        self.bases.values().any(|&base| {
            let offset = i64::from(port) - i64::from(base);
            (0..i64::from(self.replicas.max(1))).contains(&offset)
        })
    }

    /// `broker`'s ports: the pinned ones, the rest from `unpinned`.
    pub fn apply(&self, broker: i32, unpinned: Ports) -> Ports {
        Ports {
            kafka: self.port(Listener::Kafka, broker).unwrap_or(unpinned.kafka),
            admin: self.port(Listener::Admin, broker).unwrap_or(unpinned.admin),
            controller: self
                .port(Listener::Controller, broker)
                .unwrap_or(unpinned.controller),
        }
    }

    /// Why `recorded`, the ports `broker` was given before, are not the pinned ones, if they
    /// are not: the recorded ones stay (the other voters know its controller port), and the
    /// pins apply to a new state directory.
    pub fn drift(&self, broker: i32, recorded: &Ports) -> Option<String> {
        let differing: Vec<String> = Listener::ALL
            .into_iter()
            .filter_map(|listener| {
                let pinned = self.port(listener, broker)?;
                let had = listener.of(recorded);
                (pinned != had).then(|| {
                    format!(
                        "its {} port is {had}, not {pinned} ({}={})",
                        listener.name(),
                        listener.annotation(),
                        self.bases.get(&listener).copied().unwrap_or_default()
                    )
                })
            })
            .collect();
        (!differing.is_empty()).then(|| {
            format!(
                "broker {broker} keeps the ports its state directory records: {}; pinned ports \
                 apply to brokers started in a new state directory",
                differing.join(", ")
            )
        })
    }

    /// Whether every port `ports` of `broker` takes from a pin can be bound on 127.0.0.1 now
    /// (before the broker is started on it), else which one cannot and why.
    pub fn check_free(&self, broker: i32, ports: &Ports) -> Result<(), String> {
        for listener in Listener::ALL {
            let port = listener.of(ports);
            if self.port(listener, broker) != Some(port) {
                continue;
            }
            if let Err(error) = std::net::TcpListener::bind(("127.0.0.1", port)) {
                return Err(format!(
                    "the pinned port {port} (broker {broker}'s {} port, {}={}) cannot be bound: \
                     {error}; free it or pin another port",
                    listener.name(),
                    listener.annotation(),
                    self.bases.get(&listener).copied().unwrap_or_default()
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(replicas: i32, annotations: &[(&str, &str)]) -> Cluster {
        let mut text = String::from(
            "apiVersion: strom.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: local\n",
        );
        if !annotations.is_empty() {
            text.push_str("  annotations:\n");
            for (k, v) in annotations {
                text.push_str(&format!("    {k}: \"{v}\"\n"));
            }
        }
        text.push_str(&format!(
            "spec:\n  replicas: {replicas}\n  storage:\n    size: 1Gi\n"
        ));
        serde_yaml::from_str(&text).expect("a valid Cluster")
    }

    const UNPINNED: Ports = Ports {
        kafka: 40_001,
        admin: 40_002,
        controller: 40_003,
    };

    #[test]
    fn each_pinned_listener_gives_broker_i_its_base_plus_i() {
        let pins = PortPins::from_cluster(&cluster(
            3,
            &[
                (KAFKA_PORT_ANNOTATION, "9092"),
                (CONTROLLER_PORT_ANNOTATION, "19093"),
            ],
        ))
        .expect("valid pins");
        assert_eq!(
            pins.apply(2, UNPINNED),
            Ports {
                kafka: 9094,
                admin: 40_002,
                controller: 19_095
            }
        );
        assert!(pins.reserves(9094));
        assert!(!pins.reserves(9095), "only brokers 0..3 are pinned");
        assert!(!pins.reserves(9091));
    }

    #[test]
    fn without_annotations_nothing_is_pinned() {
        let pins = PortPins::from_cluster(&cluster(3, &[])).expect("valid");
        assert!(pins.is_empty());
        assert_eq!(pins.apply(1, UNPINNED), UNPINNED);
        assert!(!pins.reserves(40_001));
        assert_eq!(pins.drift(1, &UNPINNED), None);
    }

    /// Brokers, annotations, and what the refusal says.
    type Case<'a> = (i32, &'a [(&'a str, &'a str)], &'a str);

    #[test]
    fn overflowing_overlapping_and_malformed_pins_are_refused_naming_the_port() {
        let cases: &[Case<'_>] = &[
            (
                3,
                &[(KAFKA_PORT_ANNOTATION, "65534")],
                "strom.io/local-kafka-port=65534 gives broker 2 the Kafka port 65536, past 65535",
            ),
            (
                3,
                &[
                    (KAFKA_PORT_ANNOTATION, "9092"),
                    (CONTROLLER_PORT_ANNOTATION, "9094"),
                ],
                "port 9094 is pinned twice: broker 0's controller port \
                 (strom.io/local-controller-port=9094) and broker 2's Kafka port \
                 (strom.io/local-kafka-port=9092)",
            ),
            (
                1,
                &[
                    (CONTROLLER_PORT_ANNOTATION, "9500"),
                    (ADMIN_PORT_ANNOTATION, "9500"),
                ],
                "port 9500 is pinned twice",
            ),
            (
                3,
                &[(ADMIN_PORT_ANNOTATION, "nine")],
                "strom.io/local-admin-port=\"nine\" is not a port number",
            ),
            (3, &[(KAFKA_PORT_ANNOTATION, "0")], "is not a port number"),
            (
                3,
                &[(KAFKA_PORT_ANNOTATION, "70000")],
                "is not a port number",
            ),
        ];
        for (replicas, annotations, expected) in cases {
            let error =
                PortPins::from_cluster(&cluster(*replicas, annotations)).expect_err(expected);
            assert!(error.contains(expected), "{annotations:?}: {error}");
        }
        // The same pins fit fewer brokers.
        assert!(
            PortPins::from_cluster(&cluster(
                2,
                &[
                    (KAFKA_PORT_ANNOTATION, "9092"),
                    (CONTROLLER_PORT_ANNOTATION, "9094"),
                ],
            ))
            .is_ok()
        );
    }

    #[test]
    fn recorded_ports_other_than_the_pins_are_reported() {
        let pins =
            PortPins::from_cluster(&cluster(3, &[(KAFKA_PORT_ANNOTATION, "9092")])).expect("ok");
        let message = pins.drift(1, &UNPINNED).expect("drift");
        assert!(
            message.contains("broker 1 keeps the ports its state directory records: its Kafka port is 40001, not 9093 (strom.io/local-kafka-port=9092)"),
            "{message}"
        );
        assert_eq!(pins.drift(1, &pins.apply(1, UNPINNED)), None);
    }

    #[test]
    fn a_pinned_port_something_else_holds_is_refused_by_number() {
        let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let taken = holder.local_addr().expect("bound").port();
        let base = taken.saturating_sub(1).max(1);
        let pins =
            PortPins::from_cluster(&cluster(2, &[(KAFKA_PORT_ANNOTATION, &base.to_string())]))
                .expect("valid pins");
        let ports = pins.apply(1, UNPINNED);
        assert_eq!(ports.kafka, taken);
        let error = pins.check_free(1, &ports).expect_err("taken");
        assert!(
            error.contains(&format!(
                "the pinned port {taken} (broker 1's Kafka port, strom.io/local-kafka-port={base}) cannot be bound"
            )),
            "{error}"
        );
        drop(holder);
        // Unpinned ports are not this check's business.
        assert_eq!(PortPins::default().check_free(1, &ports), Ok(()));
    }
}
