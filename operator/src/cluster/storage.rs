//! Growing the brokers' volumes: raising `spec.storage.size` patches each broker's
//! PersistentVolumeClaim (`data-<cluster>-broker-<id>`) up to the new size; the StorageClass's
//! CSI driver then expands the volume and the filesystem. Claims are only ever grown: a claim
//! that is already as large or larger (resized by hand, or by an earlier pass) is left alone,
//! and the CRD's CEL rule refuses a smaller `spec.storage.size`. The StatefulSet's volume claim
//! template keeps the size it was created with (Kubernetes does not let it change), so a claim
//! created later by a scale-up starts at that size and is grown by the next pass.
//!
//! Some CSI drivers grow the filesystem only when the pod using the volume starts again: the
//! claim then reports `FileSystemResizePending=True` ([`resize_pending`]), and the day-2 roll
//! restarts that broker, one at a time and under the same rules as a revision change.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use super::builders::{FIELD_MANAGER, selector_labels, stateful_set_name};
use crate::error::Error;

/// Name of the volume claim template whose claims hold the broker data.
const DATA_CLAIM: &str = "data";
/// The claim condition of a volume whose filesystem grows when its pod restarts.
pub const FILE_SYSTEM_RESIZE_PENDING: &str = "FileSystemResizePending";

/// What one pass did to the claims.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    /// Claims patched to the new size.
    pub expanded: Vec<String>,
    /// Claims the API server refused to grow, with its message (for example a StorageClass
    /// without `allowVolumeExpansion`).
    pub refused: Vec<(String, String)>,
}

/// The PersistentVolumeClaims of `cluster`, listed by its selector labels.
pub async fn list_claims(
    api: &Api<PersistentVolumeClaim>,
    namespace: &str,
    cluster: &str,
) -> Result<Vec<PersistentVolumeClaim>, Error> {
    let selector = selector_labels(cluster)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    Ok(api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(Error::kube(format!(
            "list PersistentVolumeClaims of Cluster {namespace}/{cluster}"
        )))?
        .items)
}

/// Patches `requests.storage` of each broker claim of `cluster` among `claims` (as
/// [`list_claims`] found them) that asks for less than `size`.
pub async fn expand_claims(
    client: Client,
    namespace: &str,
    cluster: &str,
    size: &str,
    claims: &[PersistentVolumeClaim],
) -> Result<Expansion, Error> {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client, namespace);
    let mut expansion = Expansion::default();
    for name in claims_to_expand(cluster, claims, size) {
        let patch = json!({"spec": {"resources": {"requests": {"storage": size}}}});
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        match api.patch(&name, &params, &Patch::Merge(patch)).await {
            Ok(_) => expansion.expanded.push(name),
            // Forbidden or Invalid: the claim cannot grow (its StorageClass does not allow
            // expansion, or it is not dynamically provisioned). Retrying will not help until
            // someone changes that; the status says so.
            Err(kube::Error::Api(status)) if status.code == 403 || status.code == 422 => {
                expansion.refused.push((name, status.message));
            }
            Err(source) => {
                return Err(Error::Kube {
                    action: format!("grow PersistentVolumeClaim {namespace}/{name} to {size}"),
                    source,
                });
            }
        }
    }
    Ok(expansion)
}

/// The broker id whose data claim `claim` is: the ordinal after `data-<cluster>-broker-`.
fn claim_broker(cluster: &str, claim: &PersistentVolumeClaim) -> Option<i32> {
    let prefix = format!("{DATA_CLAIM}-{}-", stateful_set_name(cluster));
    let ordinal = claim
        .name_any()
        .strip_prefix(&prefix)?
        .parse::<u32>()
        .ok()?;
    i32::try_from(ordinal).ok()
}

/// The brokers whose data claim has the condition `FileSystemResizePending=True`: the volume
/// grew, and its CSI driver grows the filesystem only when the pod using it starts again.
pub fn resize_pending(cluster: &str, claims: &[PersistentVolumeClaim]) -> BTreeSet<i32> {
    claims
        .iter()
        .filter(|claim| {
            claim
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|conditions| {
                    conditions
                        .iter()
                        .any(|c| c.type_ == FILE_SYSTEM_RESIZE_PENDING && c.status == "True")
                })
        })
        .filter_map(|claim| claim_broker(cluster, claim))
        .collect()
}

/// The broker data claims of `cluster` among `claims` whose storage request is below `size`,
/// sorted by name. A claim whose request cannot be read is left alone.
pub fn claims_to_expand(
    cluster: &str,
    claims: &[PersistentVolumeClaim],
    size: &str,
) -> Vec<String> {
    let Some(wanted) = quantity_bytes(size) else {
        return Vec::new();
    };
    let mut names: Vec<String> = claims
        .iter()
        .filter(|claim| claim_broker(cluster, claim).is_some())
        .filter(|claim| {
            claim
                .spec
                .as_ref()
                .and_then(|s| s.resources.as_ref())
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get("storage"))
                .and_then(|q| quantity_bytes(&q.0))
                .is_some_and(|current| current < wanted)
        })
        .map(ResourceExt::name_any)
        .collect();
    names.sort();
    names
}

/// The value of a Kubernetes quantity (`10Gi`, `500M`, `1.5Ti`, `1e9`, `10737418240`) in
/// bytes, rounded up as Kubernetes rounds storage; `None` when it is not a non-negative
/// quantity or too large for 128 bits.
pub fn quantity_bytes(quantity: &str) -> Option<u128> {
    let quantity = quantity.trim();
    let number_end = quantity
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+'))
        .unwrap_or(quantity.len());
    let (number, suffix) = quantity.split_at(number_end);
    let number = number.strip_prefix('+').unwrap_or(number);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    if !(whole.bytes().all(|b| b.is_ascii_digit()) && fraction.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    // value = digits × 2^binary × 10^decimal / 10^(fraction digits)
    let digits: u128 = format!("{whole}{fraction}").parse().ok()?;
    let (binary, mut decimal): (u32, i32) = match suffix {
        "" => (0, 0),
        "Ki" => (10, 0),
        "Mi" => (20, 0),
        "Gi" => (30, 0),
        "Ti" => (40, 0),
        "Pi" => (50, 0),
        "Ei" => (60, 0),
        "n" => (0, -9),
        "u" => (0, -6),
        "m" => (0, -3),
        "k" => (0, 3),
        "M" => (0, 6),
        "G" => (0, 9),
        "T" => (0, 12),
        "P" => (0, 15),
        "E" => (0, 18),
        exponent => (
            0,
            exponent
                .strip_prefix(['e', 'E'])
                .and_then(|e| e.parse::<i32>().ok())?,
        ),
    };
    decimal -= i32::try_from(fraction.len()).ok()?;
    let mut numerator = digits.checked_mul(1u128.checked_shl(binary)?)?;
    let mut denominator: u128 = 1;
    if decimal >= 0 {
        numerator = numerator.checked_mul(10u128.checked_pow(decimal.unsigned_abs())?)?;
    } else {
        denominator = 10u128.checked_pow(decimal.unsigned_abs())?;
    }
    Some(numerator.div_ceil(denominator))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::{
        PersistentVolumeClaimCondition, PersistentVolumeClaimSpec, PersistentVolumeClaimStatus,
        VolumeResourceRequirements,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use kube::api::ObjectMeta;

    use super::*;

    #[test]
    fn quantities_in_bytes() {
        for (quantity, bytes) in [
            ("10Gi", 10 << 30),
            ("1.5Gi", 3 << 29),
            ("500M", 500_000_000),
            ("10737418240", 10 << 30),
            ("1e3", 1000),
            ("1E9", 1_000_000_000),
            ("0.5", 1),
            ("1500m", 2),
            ("2Ti", 2 << 40),
            ("1k", 1000),
            ("+1Ki", 1024),
        ] {
            assert_eq!(quantity_bytes(quantity), Some(bytes), "{quantity}");
        }
        for bad in [
            "",
            "Gi",
            "-1Gi",
            "10GB",
            "1.2.3Gi",
            "ten",
            "1e",
            "99999999999999999999999999999999999999999Ei",
        ] {
            assert_eq!(quantity_bytes(bad), None, "{bad}");
        }
    }

    fn claim(name: &str, size: &str) -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            spec: Some(PersistentVolumeClaimSpec {
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([(
                        "storage".to_owned(),
                        Quantity(size.to_owned()),
                    )])),
                    ..VolumeResourceRequirements::default()
                }),
                ..PersistentVolumeClaimSpec::default()
            }),
            ..PersistentVolumeClaim::default()
        }
    }

    fn with_condition(
        mut claim: PersistentVolumeClaim,
        type_: &str,
        status: &str,
    ) -> PersistentVolumeClaim {
        claim.status = Some(PersistentVolumeClaimStatus {
            conditions: Some(vec![PersistentVolumeClaimCondition {
                type_: type_.to_owned(),
                status: status.to_owned(),
                ..PersistentVolumeClaimCondition::default()
            }]),
            ..PersistentVolumeClaimStatus::default()
        });
        claim
    }

    #[test]
    fn brokers_whose_claim_waits_for_a_restart_to_grow_the_filesystem() {
        let claims = [
            with_condition(
                claim("data-demo-broker-0", "20Gi"),
                FILE_SYSTEM_RESIZE_PENDING,
                "True",
            ),
            with_condition(
                claim("data-demo-broker-1", "20Gi"),
                FILE_SYSTEM_RESIZE_PENDING,
                "False",
            ),
            with_condition(claim("data-demo-broker-2", "20Gi"), "Resizing", "True"),
            claim("data-demo-broker-3", "20Gi"),
            with_condition(
                claim("data-demo-broker-tools-0", "1Gi"),
                FILE_SYSTEM_RESIZE_PENDING,
                "True",
            ),
            with_condition(
                claim("data-demo-broker-4", "20Gi"),
                FILE_SYSTEM_RESIZE_PENDING,
                "True",
            ),
        ];
        assert_eq!(resize_pending("demo", &claims), BTreeSet::from([0, 4]));
        assert!(resize_pending("other", &claims).is_empty());
    }

    #[test]
    fn only_smaller_broker_claims_grow() {
        let claims = [
            claim("data-demo-broker-2", "10Gi"),
            // Resized by hand beyond the spec: never shrunk.
            claim("data-demo-broker-1", "30Gi"),
            // Already at the size, in another notation.
            claim("data-demo-broker-3", "21474836480"),
            claim("data-demo-broker-0", "10Gi"),
            // Not a broker data claim of this cluster.
            claim("data-demo-broker-tools-0", "1Gi"),
            claim("scratch-demo-broker-0", "1Gi"),
        ];
        assert_eq!(
            claims_to_expand("demo", &claims, "20Gi"),
            ["data-demo-broker-0", "data-demo-broker-2"]
        );
        assert!(claims_to_expand("demo", &claims, "10Gi").is_empty());
    }
}
