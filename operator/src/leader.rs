//! Leader election on a `coordination.k8s.io/v1` Lease: only the holder runs the controllers.
//!
//! [`decide`] is the pure rule (acquire a free or expired lease, renew our own, otherwise
//! follow), tested with fixed times; [`LeaderElector`] applies it with get/create/replace, the
//! `resourceVersion` making two candidates racing for an expired lease safe (one gets a
//! conflict).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;

/// The parts of a Lease the decision reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    /// `spec.holderIdentity`.
    pub holder: Option<String>,
    /// `spec.renewTime`.
    pub renew_time: Option<Timestamp>,
    /// `spec.leaseDurationSeconds`.
    pub duration: Duration,
}

/// What a candidate does with the lease now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseDecision {
    /// We hold it: renew.
    Renew,
    /// Free or expired: take it (`takeover`: someone else held it).
    Acquire {
        /// The lease had another, expired holder.
        takeover: bool,
    },
    /// Someone else holds a live lease until `expires`.
    Follow {
        /// The current holder.
        holder: String,
        /// When their lease runs out unless renewed.
        expires: Timestamp,
    },
}

/// Decides what `me` does with `lease` at `now`.
pub fn decide(lease: Option<&LeaseRecord>, me: &str, now: Timestamp) -> LeaseDecision {
    let Some(lease) = lease else {
        return LeaseDecision::Acquire { takeover: false };
    };
    let holder = match lease.holder.as_deref() {
        None | Some("") => return LeaseDecision::Acquire { takeover: false },
        Some(holder) => holder,
    };
    if holder == me {
        return LeaseDecision::Renew;
    }
    let expires = lease.renew_time.and_then(|t| {
        SignedDuration::try_from(lease.duration)
            .ok()
            .and_then(|d| t.checked_add(d).ok())
    });
    match expires {
        Some(expires) if expires > now => LeaseDecision::Follow {
            holder: holder.to_owned(),
            expires,
        },
        _ => LeaseDecision::Acquire { takeover: true },
    }
}

/// Keeps trying to hold a Lease and publishes whether we lead.
#[derive(Debug, Clone)]
pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    lease_duration: Duration,
    retry_period: Duration,
    clock: Arc<dyn Clock>,
}

impl LeaderElector {
    /// Lease `name` in `api`'s namespace, held as `identity` (the pod name). Leases last 15 s
    /// and are renewed every 5 s, as kube-controller-manager does.
    pub fn new(api: Api<Lease>, name: String, identity: String, clock: Arc<dyn Clock>) -> Self {
        Self {
            api,
            name,
            identity,
            lease_duration: Duration::from_secs(15),
            retry_period: Duration::from_secs(5),
            clock,
        }
    }

    /// One attempt: `Ok(true)` when we hold the lease afterwards.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
        let now = self.clock.now();
        let current = self.api.get_opt(&self.name).await?;
        let record = current.as_ref().map(|lease| {
            let spec = lease.spec.clone().unwrap_or_default();
            LeaseRecord {
                holder: spec.holder_identity,
                renew_time: spec.renew_time.map(|t| t.0),
                duration: Duration::from_secs(
                    u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0),
                ),
            }
        });
        let decision = decide(record.as_ref(), &self.identity, now);
        let duration_seconds = i32::try_from(self.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let result = match (decision, current) {
            (LeaseDecision::Follow { .. }, _) => return Ok(false),
            (decision, None) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(self.identity.clone()),
                        lease_duration_seconds: Some(duration_seconds),
                        acquire_time: Some(MicroTime(now)),
                        renew_time: Some(MicroTime(now)),
                        lease_transitions: Some(0),
                        ..LeaseSpec::default()
                    }),
                };
                tracing::debug!(?decision, "creating lease");
                self.api
                    .create(&PostParams::default(), &lease)
                    .await
                    .map(drop)
            }
            (decision, Some(mut lease)) => {
                let spec = lease.spec.get_or_insert_default();
                if let LeaseDecision::Acquire { .. } = decision {
                    spec.acquire_time = Some(MicroTime(now));
                    spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
                    tracing::info!(identity = %self.identity, "acquiring leadership");
                }
                spec.holder_identity = Some(self.identity.clone());
                spec.lease_duration_seconds = Some(duration_seconds);
                spec.renew_time = Some(MicroTime(now));
                // `replace` carries the resourceVersion we read: a concurrent writer wins and
                // we get 409 Conflict instead of two leaders.
                self.api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await
                    .map(drop)
            }
        };
        match result {
            Ok(()) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Runs until `cancel`: retries every few seconds and sends `true` on `leading` while we
    /// hold the lease. Leadership is given up (`false`) when renewing has failed for a whole
    /// lease duration, since another candidate may have taken over by then. On cancel a held
    /// lease is released so a standby takes over at once.
    pub async fn run(self, leading: watch::Sender<bool>, cancel: CancellationToken) {
        let mut last_renewed: Option<tokio::time::Instant> = None;
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    last_renewed = Some(tokio::time::Instant::now());
                    leading.send_if_modified(|l| !std::mem::replace(l, true));
                }
                Ok(false) => {
                    last_renewed = None;
                    leading.send_if_modified(|l| std::mem::replace(l, false));
                }
                Err(error) => {
                    tracing::warn!(%error, lease = %self.name, "lease request failed");
                    if last_renewed.is_some_and(|t| t.elapsed() >= self.lease_duration) {
                        last_renewed = None;
                        leading.send_if_modified(|l| std::mem::replace(l, false));
                    }
                }
            }
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(self.retry_period) => {}
            }
        }
        if *leading.borrow() {
            self.release().await;
        }
    }

    async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.name).await else {
            return;
        };
        let spec = lease.spec.get_or_insert_default();
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        if let Err(error) = self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            tracing::warn!(%error, "cannot release the lease; it expires on its own");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).expect("valid timestamp")
    }

    fn lease(holder: Option<&str>, renewed: i64) -> LeaseRecord {
        LeaseRecord {
            holder: holder.map(str::to_owned),
            renew_time: Some(at(renewed)),
            duration: Duration::from_secs(15),
        }
    }

    #[test]
    fn missing_or_free_lease_is_acquired() {
        assert_eq!(
            decide(None, "a", at(100)),
            LeaseDecision::Acquire { takeover: false }
        );
        assert_eq!(
            decide(Some(&lease(None, 90)), "a", at(100)),
            LeaseDecision::Acquire { takeover: false }
        );
        assert_eq!(
            decide(Some(&lease(Some(""), 90)), "a", at(100)),
            LeaseDecision::Acquire { takeover: false }
        );
    }

    #[test]
    fn own_lease_is_renewed_even_if_late() {
        assert_eq!(
            decide(Some(&lease(Some("a"), 0)), "a", at(100)),
            LeaseDecision::Renew
        );
    }

    #[test]
    fn live_foreign_lease_is_followed_until_it_expires() {
        let other = lease(Some("b"), 100);
        assert_eq!(
            decide(Some(&other), "a", at(114)),
            LeaseDecision::Follow {
                holder: "b".to_owned(),
                expires: at(115)
            }
        );
        assert_eq!(
            decide(Some(&other), "a", at(115)),
            LeaseDecision::Acquire { takeover: true }
        );
        assert_eq!(
            decide(Some(&other), "a", at(200)),
            LeaseDecision::Acquire { takeover: true }
        );
    }

    #[test]
    fn foreign_lease_without_renew_time_is_expired() {
        let other = LeaseRecord {
            holder: Some("b".to_owned()),
            renew_time: None,
            duration: Duration::from_secs(15),
        };
        assert_eq!(
            decide(Some(&other), "a", at(1)),
            LeaseDecision::Acquire { takeover: true }
        );
    }

    mod against_api_server {
        use std::sync::Arc;

        use http::{Method, StatusCode};
        use k8s_openapi::api::coordination::v1::Lease;
        use kube::Api;
        use serde_json::json;

        use super::super::LeaderElector;
        use crate::clock::FixedClock;
        use crate::fixtures::{FakeAdmin, run_scenario, test_context, test_now};

        const LEASE_PATH: &str =
            "/apis/coordination.k8s.io/v1/namespaces/ops/leases/strom-operator";

        fn elector(client: kube::Client, me: &str) -> LeaderElector {
            LeaderElector::new(
                Api::<Lease>::namespaced(client, "ops"),
                "strom-operator".to_owned(),
                me.to_owned(),
                Arc::new(FixedClock::new(test_now())),
            )
        }

        #[tokio::test]
        async fn missing_lease_is_created_with_our_identity() {
            let (ctx, mut api) = test_context(FakeAdmin::default());
            let elector = elector(ctx.client.clone(), "operator-a");
            let verify = async move {
                api.expect(Method::GET, LEASE_PATH).await.not_found();
                let create = api
                    .expect(
                        Method::POST,
                        "/apis/coordination.k8s.io/v1/namespaces/ops/leases",
                    )
                    .await;
                assert_eq!(create.body["spec"]["holderIdentity"], "operator-a");
                assert_eq!(create.body["spec"]["leaseDurationSeconds"], 15);
                create.echo();
            };
            assert!(
                run_scenario(elector.try_acquire_or_renew(), verify)
                    .await
                    .expect("lease calls succeed")
            );
        }

        #[tokio::test]
        async fn live_foreign_lease_is_left_alone() {
            let (ctx, mut api) = test_context(FakeAdmin::default());
            let elector = elector(ctx.client.clone(), "operator-a");
            let verify = async move {
                api.expect(Method::GET, LEASE_PATH).await.respond(
                    StatusCode::OK,
                    &json!({
                        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                        "metadata": {"name": "strom-operator", "namespace": "ops", "resourceVersion": "7"},
                        "spec": {"holderIdentity": "operator-b", "leaseDurationSeconds": 15, "renewTime": "2026-01-01T00:00:00.000000Z"}
                    }),
                );
            };
            assert!(
                !run_scenario(elector.try_acquire_or_renew(), verify)
                    .await
                    .expect("lease calls succeed")
            );
        }

        #[tokio::test]
        async fn expired_lease_is_taken_over_and_a_lost_race_is_not_leadership() {
            let (ctx, mut api) = test_context(FakeAdmin::default());
            let elector = elector(ctx.client.clone(), "operator-a");
            let verify = async move {
                api.expect(Method::GET, LEASE_PATH).await.respond(
                    StatusCode::OK,
                    &json!({
                        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                        "metadata": {"name": "strom-operator", "namespace": "ops", "resourceVersion": "7"},
                        "spec": {"holderIdentity": "operator-b", "leaseDurationSeconds": 15, "renewTime": "2025-12-31T23:00:00.000000Z", "leaseTransitions": 2}
                    }),
                );
                let replace = api.expect(Method::PUT, LEASE_PATH).await;
                assert_eq!(
                    replace.body["metadata"]["resourceVersion"], "7",
                    "optimistic concurrency"
                );
                assert_eq!(replace.body["spec"]["holderIdentity"], "operator-a");
                assert_eq!(replace.body["spec"]["leaseTransitions"], 3);
                replace.respond(
                    StatusCode::CONFLICT,
                    &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "conflict", "reason": "Conflict", "code": 409}),
                );
            };
            assert!(
                !run_scenario(elector.try_acquire_or_renew(), verify)
                    .await
                    .expect("a conflict is not an error")
            );
        }
    }
}
