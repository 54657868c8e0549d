//! The ConfigMap holding the brokers' `server.properties`: `spec.config` and the keys the
//! operator derives from the spec for every broker alike (`controller.quorum.voters`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use strom_crds::Cluster;

use super::{child_meta, config_map_name, controller_quorum_voters};

/// Key (and file name, mounted under `/etc/strom/`) of the broker config in the ConfigMap.
pub const SERVER_PROPERTIES: &str = "server.properties";

/// Key of the controller quorum's voter list, rendered by the operator.
const CONTROLLER_QUORUM_VOTERS: &str = "controller.quorum.voters";

/// The ConfigMap `<cluster>-config` with `server.properties` built from
/// [`broker_properties`].
pub fn config_map(cluster: &Cluster) -> ConfigMap {
    ConfigMap {
        metadata: child_meta(cluster, config_map_name(&cluster.name_any())),
        data: Some(BTreeMap::from([(
            SERVER_PROPERTIES.to_owned(),
            server_properties(&broker_properties(cluster)),
        )])),
        ..ConfigMap::default()
    }
}

/// The properties every broker of `cluster` shares: `spec.config` plus the voter list. The
/// reconciler refuses a `spec.config` with keys outside the allow-list before anything is
/// built, so the derived keys never meet a user value; they are inserted last regardless.
pub fn broker_properties(cluster: &Cluster) -> BTreeMap<String, String> {
    let mut properties = cluster.spec.config.clone();
    properties.insert(
        CONTROLLER_QUORUM_VOTERS.to_owned(),
        controller_quorum_voters(cluster),
    );
    properties
}

/// `server.properties` text in Java properties syntax, one `key=value` per line in key order,
/// so the same spec always gives the same bytes (and the same config hash on the pods).
pub fn server_properties(config: &BTreeMap<String, String>) -> String {
    let mut out =
        String::from("# Managed by strom-operator from the Cluster spec; edits are overwritten.\n");
    for (key, value) in config {
        out.push_str(&escape(key, true));
        out.push('=');
        out.push_str(&escape(value, false));
        out.push('\n');
    }
    out
}

/// Escapes what Java's `Properties.load` would otherwise read differently: backslashes, line
/// breaks, a leading space (stripped on load) and, in keys, the separators `=`, `:` and space.
fn escape(text: &str, is_key: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' ' if i == 0 || is_key => out.push_str("\\ "),
            '=' | ':' | '#' | '!' if is_key || i == 0 => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_are_sorted_and_escaped() {
        let config = BTreeMap::from([
            ("log.retention.ms".to_owned(), "604800000".to_owned()),
            ("auto.create.topics.enable".to_owned(), "false".to_owned()),
            ("odd".to_owned(), " lead\\ing\nline=x".to_owned()),
        ]);
        let text = server_properties(&config);
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(
            lines,
            vec![
                "auto.create.topics.enable=false",
                "log.retention.ms=604800000",
                "odd=\\ lead\\\\ing\\nline=x",
            ]
        );
    }
}
