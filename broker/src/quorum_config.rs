//! The metadata quorum settings, with Kafka's names: `controller.quorum.voters`,
//! `process.roles`, the controller listener, `broker.heartbeat.interval.ms` and
//! `broker.session.timeout.ms`.
//!
//! No voters configured means a single broker that is a quorum of one voter of itself. With
//! voters, a node whose `node.id` is listed is a voter (`broker,controller`), any other node an
//! observer (`broker`) that follows the metadata log without voting; an explicit
//! `process.roles` must agree with the list.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::config::{BrokerProps, ConfigError};

/// `controller.quorum.voters`: node id → controller listener `host:port`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Voters(pub BTreeMap<u64, String>);

impl std::str::FromStr for Voters {
    type Err = String;

    fn from_str(text: &str) -> Result<Voters, String> {
        let mut voters = BTreeMap::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let malformed = || format!("entry {entry:?} is not id@host:port");
            let (id, address) = entry.split_once('@').ok_or_else(malformed)?;
            let id: u64 = id.trim().parse().map_err(|_| malformed())?;
            let (host, port) = address.rsplit_once(':').ok_or_else(malformed)?;
            let port: u16 = port.parse().map_err(|_| malformed())?;
            if host.is_empty() || port == 0 {
                return Err(malformed());
            }
            if voters.insert(id, address.to_owned()).is_some() {
                return Err(format!("voter id {id} is listed more than once"));
            }
        }
        Ok(Voters(voters))
    }
}

impl std::fmt::Display for Voters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entries: Vec<String> = self.0.iter().map(|(id, a)| format!("{id}@{a}")).collect();
        f.write_str(&entries.join(","))
    }
}

/// `process.roles`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessRoles {
    /// `broker`: serves clients and follows the metadata log as an observer.
    Broker,
    /// `broker,controller`: also a voter of the metadata quorum.
    BrokerController,
}

impl std::str::FromStr for ProcessRoles {
    type Err = String;

    fn from_str(text: &str) -> Result<ProcessRoles, String> {
        let mut roles: Vec<&str> = text.split(',').map(str::trim).collect();
        roles.sort_unstable();
        match roles.as_slice() {
            ["broker"] => Ok(ProcessRoles::Broker),
            ["broker", "controller"] => Ok(ProcessRoles::BrokerController),
            ["controller"] => Err(
                "a controller-only process is not supported: every Strom node is a broker"
                    .to_owned(),
            ),
            _ => Err("must be broker or broker,controller".to_owned()),
        }
    }
}

impl std::fmt::Display for ProcessRoles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProcessRoles::Broker => "broker",
            ProcessRoles::BrokerController => "broker,controller",
        })
    }
}

/// The validated quorum settings of this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumSettings {
    /// Empty: a single broker that is its own one-voter quorum.
    pub voters: BTreeMap<u64, String>,
    /// This node follows the log without voting.
    pub observer: bool,
    pub controller_listen: Option<SocketAddr>,
    pub controller_advertised_listener: Option<String>,
    pub heartbeat_interval: Duration,
    pub session_timeout: Duration,
}

impl Default for QuorumSettings {
    fn default() -> Self {
        let props = BrokerProps::default();
        QuorumSettings {
            voters: BTreeMap::new(),
            observer: false,
            controller_listen: None,
            controller_advertised_listener: None,
            heartbeat_interval: millis(props.broker_heartbeat_interval_ms),
            session_timeout: millis(props.broker_session_timeout_ms),
        }
    }
}

impl QuorumSettings {
    pub fn new(
        node_id: i32,
        props: &BrokerProps,
        controller_listen: Option<SocketAddr>,
        controller_advertised_listener: Option<String>,
    ) -> Result<QuorumSettings, ConfigError> {
        let fail = |reason: String| Err(ConfigError::Quorum { reason });
        let voters = props.controller_quorum_voters.0.clone();
        let is_voter = u64::try_from(node_id).is_ok_and(|id| voters.contains_key(&id));
        let observer = match (props.process_roles, voters.is_empty()) {
            (Some(ProcessRoles::Broker), true) => {
                return fail(
                    "process.roles=broker needs controller.quorum.voters: a broker-only node \
                     follows the voters' metadata log"
                        .to_owned(),
                );
            }
            (_, true) => false,
            (Some(ProcessRoles::BrokerController), false) if !is_voter => {
                return fail(format!(
                    "process.roles=broker,controller but node.id {node_id} is not in \
                     controller.quorum.voters ({})",
                    props.controller_quorum_voters
                ));
            }
            (Some(ProcessRoles::Broker), false) if is_voter => {
                return fail(format!(
                    "process.roles=broker but node.id {node_id} is listed in \
                     controller.quorum.voters ({})",
                    props.controller_quorum_voters
                ));
            }
            (_, false) => !is_voter,
        };
        if !voters.is_empty() && controller_listen.is_none() {
            return fail(
                "--controller-listen is required when controller.quorum.voters is set".to_owned(),
            );
        }
        if props.broker_session_timeout_ms <= props.broker_heartbeat_interval_ms {
            return fail(format!(
                "broker.session.timeout.ms ({}) must be larger than \
                 broker.heartbeat.interval.ms ({})",
                props.broker_session_timeout_ms, props.broker_heartbeat_interval_ms
            ));
        }
        Ok(QuorumSettings {
            voters,
            observer,
            controller_listen,
            controller_advertised_listener,
            heartbeat_interval: millis(props.broker_heartbeat_interval_ms),
            session_timeout: millis(props.broker_session_timeout_ms),
        })
    }

    /// Whether this node runs a multi-node quorum (and so the controller listener).
    pub fn is_distributed(&self) -> bool {
        !self.voters.is_empty()
    }
}

fn millis(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(voters: &str, roles: Option<&str>) -> BrokerProps {
        let mut props = BrokerProps::default();
        props
            .set("controller.quorum.voters", voters, "test")
            .expect("voters parse");
        if let Some(roles) = roles {
            props.set("process.roles", roles, "test").expect("roles");
        }
        props
    }

    fn listen() -> Option<SocketAddr> {
        Some(SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    #[test]
    fn voters_parse_and_print() {
        let voters: Voters = "0@a:1, 1@b.example:2,2@[::1]:3".parse().expect("valid");
        assert_eq!(voters.0.len(), 3);
        assert_eq!(voters.0[&2], "[::1]:3");
        assert_eq!(voters.to_string(), "0@a:1,1@b.example:2,2@[::1]:3");
        assert_eq!("".parse::<Voters>().expect("empty"), Voters::default());
        for bad in ["0@a", "x@a:1", "0a:1", "0@:1", "0@a:0", "0@a:70000"] {
            let error = bad.parse::<Voters>().expect_err(bad);
            assert!(error.contains("is not id@host:port"), "{bad}: {error}");
        }
        let dup = "0@a:1,0@b:2".parse::<Voters>().expect_err("duplicate");
        assert!(dup.contains("more than once"), "{dup}");
    }

    #[test]
    fn roles_follow_from_the_voter_list() {
        let voter =
            QuorumSettings::new(1, &props("0@a:1,1@b:2", None), listen(), None).expect("voter");
        assert!(!voter.observer && voter.is_distributed());
        let observer =
            QuorumSettings::new(5, &props("0@a:1,1@b:2", None), listen(), None).expect("observer");
        assert!(observer.observer);
        let single = QuorumSettings::new(0, &BrokerProps::default(), None, None).expect("single");
        assert!(!single.is_distributed() && !single.observer);
    }

    #[test]
    fn contradicting_settings_name_the_setting() {
        let cases = [
            (
                5,
                props("0@a:1", Some("broker,controller")),
                listen(),
                "not in controller.quorum.voters",
            ),
            (
                0,
                props("0@a:1", Some("broker")),
                listen(),
                "is listed in controller.quorum.voters",
            ),
            (
                0,
                props("", Some("broker")),
                listen(),
                "needs controller.quorum.voters",
            ),
            (
                0,
                props("0@a:1", None),
                None,
                "--controller-listen is required",
            ),
        ];
        for (node_id, props, listen, expected) in cases {
            let error = QuorumSettings::new(node_id, &props, listen, None).expect_err(expected);
            assert!(error.to_string().contains(expected), "{error}");
        }
        let mut props = BrokerProps::default();
        props
            .set("broker.session.timeout.ms", "100", "t")
            .expect("set");
        props
            .set("broker.heartbeat.interval.ms", "100", "t")
            .expect("set");
        let error = QuorumSettings::new(0, &props, None, None).expect_err("timeouts");
        assert!(
            error.to_string().contains("broker.session.timeout.ms"),
            "{error}"
        );
        let mut props = BrokerProps::default();
        let error = props
            .set("process.roles", "controller", "t")
            .expect_err("controller only");
        assert!(error.to_string().contains("process.roles"), "{error}");
    }
}
