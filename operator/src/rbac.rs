//! The Kubernetes permissions the operator uses, as one table. The Helm chart renders its
//! ClusterRole from this list; keep the two identical.
//!
//! | apiGroups | resources | verbs | why |
//! |---|---|---|---|
//! | `strom.io` | `clusters`, `topics` | get, list, watch, patch | watch the custom resources; add/remove the Topic finalizer |
//! | `strom.io` | `clusters/status`, `topics/status` | get, patch | write status with server-side apply |
//! | `strom.io` | `clusters/finalizers`, `topics/finalizers` | update | owner references on children where the `OwnerReferencesPermissionEnforcement` admission plugin runs |
//! | `apps` | `statefulsets` | get, list, watch, create, patch | the broker StatefulSet |
//! | `""` | `services`, `configmaps` | get, list, watch, create, patch | headless/bootstrap Services, `server.properties` |
//! | `""` | `pods` | list | per-broker status and the day-2 workload (revision, ready, crash-looping) |
//! | `""` | `pods/eviction` | create | restart one broker, through the PodDisruptionBudget |
//! | `""` | `persistentvolumeclaims` | list, patch | grow the broker volumes when `spec.storage.size` grows |
//! | `policy` | `poddisruptionbudgets` | get, list, watch, create, patch | one broker down at a time |
//! | `events.k8s.io` | `events` | create, patch | Events for each action and refusal (patch: event series) |
//! | `coordination.k8s.io` | `leases` | get, create, update | leader election |
//! | `monitoring.coreos.com` | `servicemonitors` | get, create, patch | optional ServiceMonitor |
//! | `apiextensions.k8s.io` | `customresourcedefinitions` | get | is the ServiceMonitor CRD installed? |
//!
//! Children are removed by Kubernetes garbage collection through owner references, and a
//! broker is restarted by evicting its pod (the eviction honours the PodDisruptionBudget,
//! which a delete would bypass), so the operator needs no `delete` verb. Pods need no watch:
//! the owned StatefulSet's status changes whenever a broker pod comes, goes or changes
//! readiness, and that wakes the Cluster.

/// One `rules` entry of a ClusterRole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyRule {
    /// `apiGroups` (`""` is the core group).
    pub api_groups: &'static [&'static str],
    /// `resources`, including subresources (`clusters/status`).
    pub resources: &'static [&'static str],
    /// `verbs`.
    pub verbs: &'static [&'static str],
}

/// Every permission the operator needs, and nothing more.
pub const RULES: &[PolicyRule] = &[
    PolicyRule {
        api_groups: &["strom.io"],
        resources: &["clusters", "topics"],
        verbs: &["get", "list", "watch", "patch"],
    },
    PolicyRule {
        api_groups: &["strom.io"],
        resources: &["clusters/status", "topics/status"],
        verbs: &["get", "patch"],
    },
    PolicyRule {
        api_groups: &["strom.io"],
        resources: &["clusters/finalizers", "topics/finalizers"],
        verbs: &["update"],
    },
    PolicyRule {
        api_groups: &["apps"],
        resources: &["statefulsets"],
        verbs: &["get", "list", "watch", "create", "patch"],
    },
    PolicyRule {
        api_groups: &[""],
        resources: &["services", "configmaps"],
        verbs: &["get", "list", "watch", "create", "patch"],
    },
    PolicyRule {
        api_groups: &[""],
        resources: &["pods"],
        verbs: &["list"],
    },
    PolicyRule {
        api_groups: &[""],
        resources: &["pods/eviction"],
        verbs: &["create"],
    },
    PolicyRule {
        api_groups: &[""],
        resources: &["persistentvolumeclaims"],
        verbs: &["list", "patch"],
    },
    PolicyRule {
        api_groups: &["policy"],
        resources: &["poddisruptionbudgets"],
        verbs: &["get", "list", "watch", "create", "patch"],
    },
    PolicyRule {
        api_groups: &["events.k8s.io"],
        resources: &["events"],
        verbs: &["create", "patch"],
    },
    PolicyRule {
        api_groups: &["coordination.k8s.io"],
        resources: &["leases"],
        verbs: &["get", "create", "update"],
    },
    PolicyRule {
        api_groups: &["monitoring.coreos.com"],
        resources: &["servicemonitors"],
        verbs: &["get", "create", "patch"],
    },
    PolicyRule {
        api_groups: &["apiextensions.k8s.io"],
        resources: &["customresourcedefinitions"],
        verbs: &["get"],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(group: &str, resource: &str, verb: &str) -> bool {
        RULES.iter().any(|r| {
            r.api_groups.contains(&group)
                && r.resources.contains(&resource)
                && r.verbs.contains(&verb)
        })
    }

    /// Each request the reconcilers and the leader election make, checked against the table.
    #[test]
    fn table_covers_every_call_the_operator_makes() {
        for (group, resource, verb) in [
            ("strom.io", "clusters", "watch"),
            ("strom.io", "topics", "patch"),
            ("strom.io", "clusters/status", "patch"),
            ("strom.io", "topics/status", "patch"),
            ("strom.io", "clusters/finalizers", "update"),
            ("apps", "statefulsets", "patch"),
            ("apps", "statefulsets", "watch"),
            ("", "configmaps", "patch"),
            ("", "services", "patch"),
            ("", "pods", "list"),
            ("", "pods/eviction", "create"),
            ("", "persistentvolumeclaims", "list"),
            ("", "persistentvolumeclaims", "patch"),
            ("apps", "statefulsets", "get"),
            ("policy", "poddisruptionbudgets", "patch"),
            ("events.k8s.io", "events", "create"),
            ("coordination.k8s.io", "leases", "update"),
            ("monitoring.coreos.com", "servicemonitors", "patch"),
            ("apiextensions.k8s.io", "customresourcedefinitions", "get"),
        ] {
            assert!(
                allows(group, resource, verb),
                "missing {verb} on {group}/{resource}"
            );
        }
        assert!(
            !RULES
                .iter()
                .any(|r| r.verbs.contains(&"delete") || r.verbs.contains(&"*")),
            "no delete, no wildcards"
        );
    }
}
