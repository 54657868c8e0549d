//! Broker-side request times read off `/metrics` (`strom_request_duration_seconds`), so a
//! benchmark can tell time spent in the brokers from time spent in the client.

use std::collections::BTreeMap;

use crate::observability::http_get;

/// One API's histogram on one broker: cumulative bucket counts by upper bound, sum and count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApiTimes {
    pub buckets: Vec<(f64, f64)>,
    pub sum: f64,
    pub count: f64,
}

impl ApiTimes {
    /// What was recorded between `before` and `self`.
    pub fn since(&self, before: &ApiTimes) -> ApiTimes {
        let buckets = self
            .buckets
            .iter()
            .map(|&(le, n)| {
                let earlier = before
                    .buckets
                    .iter()
                    .find(|(b, _)| *b == le)
                    .map_or(0.0, |(_, n)| *n);
                (le, n - earlier)
            })
            .collect();
        ApiTimes {
            buckets,
            sum: self.sum - before.sum,
            count: self.count - before.count,
        }
    }

    /// Mean request time in milliseconds.
    pub fn mean_ms(&self) -> f64 {
        if self.count > 0.0 {
            self.sum / self.count * 1000.0
        } else {
            0.0
        }
    }

    /// The upper bound (ms) of the first bucket holding the `q` quantile; infinite past the
    /// last bucket.
    pub fn quantile_bound_ms(&self, q: f64) -> f64 {
        let wanted = self.count * q;
        self.buckets
            .iter()
            .find(|(_, n)| *n >= wanted)
            .map_or(f64::INFINITY, |(le, _)| le * 1000.0)
    }
}

/// Every API's request times in a `/metrics` text.
pub fn parse(text: &str) -> BTreeMap<String, ApiTimes> {
    let mut apis: BTreeMap<String, ApiTimes> = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("strom_request_duration_seconds") else {
            continue;
        };
        let Some((series, value)) = rest.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let Some(api) = label(series, "api") else {
            continue;
        };
        let times = apis.entry(api.to_string()).or_default();
        if series.starts_with("_bucket") {
            let le = match label(series, "le") {
                Some("+Inf") => f64::INFINITY,
                Some(le) => le.parse().unwrap_or(f64::INFINITY),
                None => continue,
            };
            times.buckets.push((le, value));
        } else if series.starts_with("_sum") {
            times.sum = value;
        } else if series.starts_with("_count") {
            times.count = value;
        }
    }
    apis
}

fn label<'a>(series: &'a str, name: &str) -> Option<&'a str> {
    let start = series.find(&format!("{name}=\""))? + name.len() + 2;
    let len = series[start..].find('"')?;
    Some(&series[start..start + len])
}

/// Every API's request times on the broker whose admin listener is `admin_url`.
pub fn scrape(admin_url: &str) -> anyhow::Result<BTreeMap<String, ApiTimes>> {
    Ok(parse(&http_get(&format!("{admin_url}/metrics"))?.body))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# HELP strom_request_duration_seconds Time
strom_request_duration_seconds_bucket{api=\"Produce\",le=\"0.001\"} 6
strom_request_duration_seconds_bucket{api=\"Produce\",le=\"0.01\"} 9
strom_request_duration_seconds_bucket{api=\"Produce\",le=\"+Inf\"} 10
strom_request_duration_seconds_sum{api=\"Produce\"} 0.05
strom_request_duration_seconds_count{api=\"Produce\"} 10
strom_requests_total{api=\"Produce\"} 10
";

    #[test]
    fn parses_buckets_sum_and_count_and_takes_differences() {
        let now = parse(TEXT);
        let produce = &now["Produce"];
        assert_eq!(produce.count, 10.0);
        assert_eq!(produce.buckets.len(), 3);
        assert!((produce.mean_ms() - 5.0).abs() < 1e-9);
        assert_eq!(produce.quantile_bound_ms(0.5), 1.0);
        assert_eq!(produce.quantile_bound_ms(0.9), 10.0);
        assert_eq!(produce.quantile_bound_ms(0.99), f64::INFINITY);

        let before = ApiTimes {
            buckets: vec![(0.001, 6.0), (0.01, 6.0), (f64::INFINITY, 6.0)],
            sum: 0.006,
            count: 6.0,
        };
        let delta = produce.since(&before);
        assert_eq!(delta.count, 4.0);
        assert_eq!(delta.quantile_bound_ms(0.5), 10.0);
        assert!((delta.mean_ms() - 11.0).abs() < 1e-9);
    }
}
