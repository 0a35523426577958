//! The enclave's `/metrics` text read back: request-duration histograms and request counts
//! picked by label, so a benchmark can say how long a kind of request took between two scrapes
//! (its latency inside the enclave, from the request's head to its answer; not the proxy's TLS
//! or the network).

use std::collections::BTreeMap;

/// `apiserver_request_duration_seconds`: one histogram per label set.
const DURATION: &str = "apiserver_request_duration_seconds_bucket";
/// `apiserver_request_total`: one counter per label set.
const REQUESTS: &str = "apiserver_request_total";

/// One scrape of `/metrics`.
pub struct Scrape {
    text: String,
}

/// The labels of one sample, `key -> value`.
pub type Labels = BTreeMap<String, String>;

impl Scrape {
    /// A scrape from the text `/metrics` answered.
    pub fn new(text: impl Into<String>) -> Self {
        Self { text: text.into() }
    }

    /// The samples of `family` (the full sample name, e.g. `..._bucket`) with their labels.
    fn samples<'a>(&'a self, family: &'a str) -> impl Iterator<Item = (Labels, f64)> + 'a {
        self.text.lines().filter_map(move |line| {
            let rest = line.strip_prefix(family)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(inner) => {
                    let (labels, value) = inner.rsplit_once('}')?;
                    (parse_labels(labels)?, value)
                }
                None if rest.starts_with(' ') => (Labels::new(), rest),
                None => return None,
            };
            Some((labels, value.trim().parse().ok()?))
        })
    }

    /// The request-duration histogram of the requests whose labels include all of `want`
    /// (`("verb", "PUT")`, `("resource", "leases")`, ...), summed over the other labels (the
    /// answer's code among them).
    pub fn durations(&self, want: &[(&str, &str)]) -> Histogram {
        let mut buckets: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
        for (labels, count) in self.samples(DURATION) {
            if !matches(&labels, want) {
                continue;
            }
            let Some(bound) = labels.get("le").and_then(|le| parse_bound(le)) else {
                continue;
            };
            // Bounds keyed by their bits: every label set has the same bounds.
            buckets.entry(bound.to_bits()).or_insert((bound, 0.0)).1 += count;
        }
        let mut bounds: Vec<(f64, f64)> = buckets.into_values().collect();
        bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
        Histogram { buckets: bounds }
    }

    /// The request counts by `(verb, resource, subresource, code)` whose code is not 2xx/3xx.
    pub fn refusals(&self) -> BTreeMap<(String, String, String, u16), f64> {
        let mut out = BTreeMap::new();
        for (labels, count) in self.samples(REQUESTS) {
            let code: u16 = labels.get("code").and_then(|c| c.parse().ok()).unwrap_or(0);
            if (200..400).contains(&code) {
                continue;
            }
            let field = |k: &str| labels.get(k).cloned().unwrap_or_default();
            *out.entry((field("verb"), field("resource"), field("subresource"), code))
                .or_insert(0.0) += count;
        }
        out
    }
}

/// Whether `labels` holds every `(key, value)` of `want`.
fn matches(labels: &Labels, want: &[(&str, &str)]) -> bool {
    want.iter()
        .all(|(k, v)| labels.get(*k).is_some_and(|have| have == v))
}

/// `+Inf` or a number.
fn parse_bound(le: &str) -> Option<f64> {
    if le == "+Inf" {
        Some(f64::INFINITY)
    } else {
        le.parse().ok()
    }
}

/// `a="x",b="y"` (values without escaped quotes, as the enclave writes them).
fn parse_labels(text: &str) -> Option<Labels> {
    let mut labels = Labels::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let (value, after) = after.split_once('"')?;
        labels.insert(key.trim().to_string(), value.to_string());
        rest = after.strip_prefix(',').unwrap_or(after);
    }
    Some(labels)
}

/// A cumulative histogram: `(upper bound in seconds, requests at or below it)`, ascending, the
/// last bound `+Inf`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    buckets: Vec<(f64, f64)>,
}

impl Histogram {
    /// What was observed after `earlier` (a scrape of the same process taken before).
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        let before = |bound: f64| {
            earlier
                .buckets
                .iter()
                .find(|(b, _)| *b == bound)
                .map_or(0.0, |(_, c)| *c)
        };
        Histogram {
            buckets: self
                .buckets
                .iter()
                .map(|&(bound, count)| (bound, (count - before(bound)).max(0.0)))
                .collect(),
        }
    }

    /// How many requests it holds.
    pub fn count(&self) -> u64 {
        self.buckets.last().map_or(0, |&(_, c)| c as u64)
    }

    /// The `q` quantile in seconds, as Prometheus' `histogram_quantile` estimates it (linear
    /// within the bucket it falls in); `None` when empty. A quantile in the `+Inf` bucket is
    /// the highest finite bound.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.buckets.last()?.1;
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let mut lower = (0.0, 0.0);
        for &(bound, count) in &self.buckets {
            if count >= rank {
                if bound.is_infinite() {
                    return Some(lower.0);
                }
                let width = count - lower.1;
                let within = if width > 0.0 {
                    (rank - lower.1) / width
                } else {
                    1.0
                };
                return Some(lower.0 + (bound - lower.0) * within);
            }
            lower = (bound, count);
        }
        Some(lower.0)
    }

    /// The smallest bucket bound at or below which a share `q` of the requests fell: what the
    /// histogram can say for certain about the `q` quantile (`quantile` interpolates).
    pub fn bound_of(&self, q: f64) -> Option<f64> {
        let total = self.buckets.last()?.1;
        if total <= 0.0 {
            return None;
        }
        self.buckets
            .iter()
            .find(|&&(_, count)| count >= q * total)
            .map(|&(bound, _)| bound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP apiserver_request_duration_seconds Response latency
apiserver_request_duration_seconds_bucket{verb="PUT",group="coordination.k8s.io",version="v1",resource="leases",subresource="",scope="resource",code="200",le="0.001"} 80
apiserver_request_duration_seconds_bucket{verb="PUT",group="coordination.k8s.io",version="v1",resource="leases",subresource="",scope="resource",code="200",le="0.005"} 98
apiserver_request_duration_seconds_bucket{verb="PUT",group="coordination.k8s.io",version="v1",resource="leases",subresource="",scope="resource",code="200",le="+Inf"} 100
apiserver_request_duration_seconds_bucket{verb="PUT",group="coordination.k8s.io",version="v1",resource="leases",subresource="",scope="resource",code="409",le="0.001"} 10
apiserver_request_duration_seconds_bucket{verb="PUT",group="coordination.k8s.io",version="v1",resource="leases",subresource="",scope="resource",code="409",le="0.005"} 10
apiserver_request_duration_seconds_bucket{verb="PUT",group="coordination.k8s.io",version="v1",resource="leases",subresource="",scope="resource",code="409",le="+Inf"} 10
apiserver_request_duration_seconds_bucket{verb="PATCH",group="",version="v1",resource="nodes",subresource="status",scope="resource",code="200",le="0.001"} 5
apiserver_request_duration_seconds_bucket{verb="PATCH",group="",version="v1",resource="nodes",subresource="status",scope="resource",code="200",le="0.005"} 5
apiserver_request_duration_seconds_bucket{verb="PATCH",group="",version="v1",resource="nodes",subresource="status",scope="resource",code="200",le="+Inf"} 5
apiserver_request_total{verb="PUT",group="coordination.k8s.io",version="v1",resource="leases",subresource="",scope="resource",code="409"} 10
apiserver_request_total{verb="PUT",group="coordination.k8s.io",version="v1",resource="leases",subresource="",scope="resource",code="200"} 100
apiserver_request_total{verb="GET",group="",version="",resource="",subresource="",scope="",code="304"} 3
"#;

    #[test]
    fn a_histogram_sums_the_label_sets_it_picks() {
        let scrape = Scrape::new(TEXT);
        let leases = scrape.durations(&[("verb", "PUT"), ("resource", "leases")]);
        assert_eq!(leases.count(), 110);
        assert_eq!(
            leases.buckets,
            vec![(0.001, 90.0), (0.005, 108.0), (f64::INFINITY, 110.0)]
        );
        let status = scrape.durations(&[("resource", "nodes"), ("subresource", "status")]);
        assert_eq!(status.count(), 5);
        assert_eq!(scrape.durations(&[("resource", "pods")]).count(), 0);
    }

    #[test]
    fn quantiles_interpolate_within_their_bucket() {
        let h = Histogram {
            buckets: vec![(0.001, 50.0), (0.005, 100.0), (f64::INFINITY, 100.0)],
        };
        assert_eq!(h.quantile(0.5), Some(0.001));
        // The 75th request is halfway through the 1..5 ms bucket.
        assert!((h.quantile(0.75).unwrap() - 0.003).abs() < 1e-12);
        assert_eq!(h.bound_of(0.75), Some(0.005));
        assert_eq!(h.bound_of(0.5), Some(0.001));
        let slow = Histogram {
            buckets: vec![(0.001, 1.0), (f64::INFINITY, 10.0)],
        };
        assert_eq!(slow.quantile(0.99), Some(0.001));
        assert_eq!(slow.bound_of(0.99), Some(f64::INFINITY));
        assert_eq!(Histogram::default().quantile(0.5), None);
    }

    #[test]
    fn since_takes_the_earlier_scrape_away() {
        let before = Histogram {
            buckets: vec![(0.001, 10.0), (f64::INFINITY, 12.0)],
        };
        let after = Histogram {
            buckets: vec![(0.001, 30.0), (f64::INFINITY, 40.0)],
        };
        let delta = after.since(&before);
        assert_eq!(delta.buckets, vec![(0.001, 20.0), (f64::INFINITY, 28.0)]);
        assert_eq!(delta.count(), 28);
    }

    #[test]
    fn refusals_are_the_counts_outside_2xx_and_3xx() {
        let refused = Scrape::new(TEXT).refusals();
        assert_eq!(
            refused.into_iter().collect::<Vec<_>>(),
            vec![(("PUT".into(), "leases".into(), String::new(), 409), 10.0)]
        );
    }
}
