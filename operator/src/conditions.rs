//! Kubernetes-style status conditions (`type`, `status`, `reason`, `message`,
//! `lastTransitionTime`, `observedGeneration`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// Sets condition `type_` in `conditions`. `lastTransitionTime` only moves when `status`
/// changes, so `kubectl get` shows how long a state has lasted, not when it was last checked.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
    now: Timestamp,
) {
    let status = if status { "True" } else { "False" }.to_owned();
    let message = message.into();
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(existing) => {
            if existing.status != status {
                existing.last_transition_time = Time(now);
            }
            existing.status = status;
            existing.reason = reason.to_owned();
            existing.message = message;
            existing.observed_generation = generation;
        }
        None => conditions.push(Condition {
            type_: type_.to_owned(),
            status,
            reason: reason.to_owned(),
            message,
            observed_generation: generation,
            last_transition_time: Time(now),
        }),
    }
}

/// The condition of type `type_`, if present.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        let t0 = Timestamp::from_second(1_000).expect("valid");
        let t1 = Timestamp::from_second(2_000).expect("valid");
        let t2 = Timestamp::from_second(3_000).expect("valid");
        let mut conditions = Vec::new();
        set_condition(
            &mut conditions,
            "Ready",
            false,
            "Provisioning",
            "starting",
            Some(1),
            t0,
        );
        set_condition(
            &mut conditions,
            "Ready",
            false,
            "Provisioning",
            "1/3 ready",
            Some(1),
            t1,
        );
        assert_eq!(conditions[0].last_transition_time, Time(t0));
        assert_eq!(conditions[0].message, "1/3 ready");
        set_condition(
            &mut conditions,
            "Ready",
            true,
            "Ready",
            "3/3 ready",
            Some(2),
            t2,
        );
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].last_transition_time, Time(t2));
        assert_eq!(conditions[0].status, "True");
        assert_eq!(conditions[0].observed_generation, Some(2));
    }
}
