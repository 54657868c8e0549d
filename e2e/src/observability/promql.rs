//! The metric names a PromQL expression reads, found by a scanner that knows just enough
//! PromQL for the expressions in `deploy/` (it is not a parser; Prometheus parses them in the
//! tests that evaluate them).

use std::collections::BTreeSet;

/// PromQL words that look like identifiers but are not metric names.
const PROMQL_KEYWORDS: [&str; 11] = [
    "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "inf", "nan",
];
/// Keywords followed by a parenthesised list of label names, not an expression.
const LABEL_LIST_KEYWORDS: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The metric names an expression reads: identifiers that are not functions, aggregations,
/// keywords or label names. Label matchers (`{...}`), ranges (`[...]`), strings and numbers are
/// skipped. Enough for the expressions in `deploy/` (it is not a full PromQL parser:
/// `{__name__="x"}` selectors are not reported).
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(&chars, i);
        } else if c == '{' || c == '[' {
            i = skip_group(&chars, i);
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == '_')
            {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let lowered = word.to_ascii_lowercase();
            if LABEL_LIST_KEYWORDS.contains(&lowered.as_str()) {
                if chars.get(next) == Some(&'(') {
                    i = skip_group(&chars, next);
                }
            } else if chars.get(next) != Some(&'(')
                && !PROMQL_KEYWORDS.contains(&lowered.as_str())
                && !starts_with_word(&chars[next..], &["by", "without"])
            {
                // Not a function call, a keyword, nor an aggregation as in `sum by (l) (...)`.
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

/// Whether `chars` starts with one of `words` as a whole word (case-insensitive).
fn starts_with_word(chars: &[char], words: &[&str]) -> bool {
    let end = chars
        .iter()
        .position(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
        .unwrap_or(chars.len());
    let word: String = chars[..end].iter().collect::<String>().to_ascii_lowercase();
    words.contains(&word.as_str())
}

/// Index just past the string literal opening at `start`.
fn skip_string(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' if quote != '`' => i += 2,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// Index just past the bracketed group (`{…}`, `[…]` or `(…)`) opening at `start`, skipping
/// strings inside it.
fn skip_group(chars: &[char], start: usize) -> usize {
    let open = chars[start];
    let close = match open {
        '{' => '}',
        '[' => ']',
        _ => ')',
    };
    let mut depth = 0usize;
    let mut i = start;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(chars, i);
            continue;
        }
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return i + 1;
            }
        }
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_skips_functions_keywords_labels_and_numbers() {
        let cases: [(&str, &[&str]); 8] = [
            (
                r#"sum by (instance) (rate(kafka_server_brokertopicmetrics_bytesin_total{topic="",cluster=~".*"}[1m]))"#,
                &["kafka_server_brokertopicmetrics_bytesin_total"],
            ),
            (
                r#"histogram_quantile(0.99, sum by (api, le) (rate(strom_request_duration_seconds_bucket{api!~"Fetch|x}"}[5m]))) > 1"#,
                &["strom_request_duration_seconds_bucket"],
            ),
            (r#"count(up{job=~".*strom.*"} == 0) or vector(0)"#, &["up"]),
            (
                "sum(a) / sum(b) > 0.1 unless on (kind) c offset 5m",
                &["a", "b", "c"],
            ),
            (
                "predict_linear(x[6h], 24 * 3600) < 0 and y / z < 1e-3",
                &["x", "y", "z"],
            ),
            (
                "max by (topic, partition) (m1) - ignoring (partition) group_left (topic) m2",
                &["m1", "m2"],
            ),
            (
                "sum without (le) (rate(h_bucket[1m])) > bool 0",
                &["h_bucket"],
            ),
            ("1 + 2", &[]),
        ];
        for (expr, want) in cases {
            let got: Vec<String> = metric_names(expr).into_iter().collect();
            assert_eq!(got, want, "{expr}");
        }
    }
}
