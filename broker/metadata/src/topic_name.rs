//! Kafka's topic name rules (`org.apache.kafka.common.internals.Topic`).

/// The longest legal topic name: 255 minus room for a partition suffix and log dir markers.
pub const MAX_TOPIC_NAME_LENGTH: usize = 249;

/// Checks a topic name, returning Kafka's message when it is illegal.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Topic name is illegal, it can't be empty".to_owned());
    }
    if name == "." || name == ".." {
        return Err("Topic name cannot be \".\" or \"..\"".to_owned());
    }
    if name.len() > MAX_TOPIC_NAME_LENGTH {
        return Err(format!(
            "Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME_LENGTH} characters, \
             topic name: {name}"
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII \
             alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// Topic names that differ only in '.' versus '_' collide: both map to the same metric names.
pub fn collision_key(name: &str) -> String {
    name.replace('.', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_name_rules() {
        let long = "a".repeat(249);
        let too_long = "a".repeat(250);
        let cases: &[(&str, bool)] = &[
            ("orders", true),
            ("Orders.v1_x-2", true),
            (&long, true),
            (&too_long, false),
            ("", false),
            (".", false),
            ("..", false),
            ("...", true),
            ("has space", false),
            ("slash/name", false),
            ("ünïcode", false),
        ];
        for (name, ok) in cases {
            assert_eq!(validate_topic_name(name).is_ok(), *ok, "{name:?}");
        }
        assert_eq!(collision_key("a.b_c"), collision_key("a_b.c"));
    }
}
