//! The open-file limit. Every segment and connection takes file descriptors, and the soft limit
//! many systems start processes with (1024) runs out long before the hard limit does; as Kafka's
//! start scripts advise, the broker raises its soft `RLIMIT_NOFILE` to the hard limit at start.

/// The limit before and after raising it; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileLimit {
    pub soft_before: Option<u64>,
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

/// Raises the soft open-file limit to the hard limit. An unlimited hard limit leaves the soft
/// limit as it is (Linux refuses an unlimited `RLIMIT_NOFILE`).
pub fn raise_nofile_limit() -> std::io::Result<NofileLimit> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let before = getrlimit(Resource::Nofile);
    let target = match (before.current, before.maximum) {
        (Some(soft), Some(hard)) if soft < hard => Some(hard),
        _ => None,
    };
    if let Some(hard) = target {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(hard),
                maximum: Some(hard),
            },
        )?;
    }
    let after = getrlimit(Resource::Nofile);
    Ok(NofileLimit {
        soft_before: before.current,
        soft: after.current,
        hard: after.maximum,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        let limit = raise_nofile_limit().expect("raise");
        if limit.hard.is_some() {
            assert_eq!(limit.soft, limit.hard);
        }
        assert!(limit.soft >= limit.soft_before || limit.soft.is_none());
    }
}
