//! Latency summaries: exact percentiles of measured samples, and bounds
//! read from a Prometheus histogram's buckets (all the server exports).

use std::time::Duration;

/// p50 / p99 / max / mean of a set of samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Samples.
    pub count: usize,
    /// Median (nearest rank).
    pub p50: Duration,
    /// 99th percentile (nearest rank).
    pub p99: Duration,
    /// The slowest.
    pub max: Duration,
    /// Arithmetic mean.
    pub mean: Duration,
}

/// The nearest-rank `q`-quantile (0 < q ≤ 1) of ascending `sorted`: the
/// smallest sample with at least `q` of all samples at or below it.
fn nearest_rank(sorted: &[Duration], q: f64) -> Duration {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Summary {
    /// Summarizes `samples`; `None` when there are none.
    pub fn of(samples: &[Duration]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let total: Duration = sorted.iter().sum();
        Some(Self {
            count: sorted.len(),
            p50: nearest_rank(&sorted, 0.50),
            p99: nearest_rank(&sorted, 0.99),
            max: sorted[sorted.len() - 1],
            mean: total / sorted.len() as u32,
        })
    }
}

impl core::fmt::Display for Summary {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        write!(
            f,
            "n={} p50={:.3} ms p99={:.3} ms max={:.3} ms mean={:.3} ms",
            self.count,
            ms(self.p50),
            ms(self.p99),
            ms(self.max),
            ms(self.mean)
        )
    }
}

/// A Prometheus histogram as scraped: cumulative counts per upper bound
/// (ascending, `+Inf` last), sum and count.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// `(le, cumulative count)`, ascending `le`.
    pub buckets: Vec<(f64, f64)>,
    /// `_sum`.
    pub sum: f64,
    /// `_count`.
    pub count: f64,
}

/// The value of the sample line `name{labels} value` (labels ignored,
/// first match), from Prometheus text exposition.
pub fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let rest = line.strip_prefix(name)?;
            let rest = if let Some(labelled) = rest.strip_prefix('{') {
                &labelled[labelled.find('}')? + 1..]
            } else {
                rest
            };
            if !rest.starts_with(' ') {
                return None;
            }
            rest.split_whitespace().next()?.parse().ok()
        })
}

impl Histogram {
    /// The histogram `name` (without `_bucket`) in exposition `text`.
    pub fn parse(text: &str, name: &str) -> Option<Self> {
        let bucket = format!("{name}_bucket{{");
        let mut buckets = Vec::new();
        for line in text.lines().filter(|l| l.starts_with(&bucket)) {
            let le_start = line.find("le=\"")? + 4;
            let le_end = line[le_start..].find('"')? + le_start;
            let le = match &line[le_start..le_end] {
                "+Inf" => f64::INFINITY,
                other => other.parse().ok()?,
            };
            let value = line.rsplit(' ').next()?.parse().ok()?;
            buckets.push((le, value));
        }
        if buckets.is_empty() {
            return None;
        }
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        Some(Self {
            buckets,
            sum: sample(text, &format!("{name}_sum"))?,
            count: sample(text, &format!("{name}_count"))?,
        })
    }

    /// What was observed between `earlier` and `self` (same buckets).
    pub fn since(&self, earlier: &Self) -> Option<Self> {
        if self.buckets.len() != earlier.buckets.len()
            || self
                .buckets
                .iter()
                .zip(&earlier.buckets)
                .any(|(a, b)| a.0.total_cmp(&b.0).is_ne())
        {
            return None;
        }
        Some(Self {
            buckets: self
                .buckets
                .iter()
                .zip(&earlier.buckets)
                .map(|(a, b)| (a.0, a.1 - b.1))
                .collect(),
            sum: self.sum - earlier.sum,
            count: self.count - earlier.count,
        })
    }

    /// The upper bound of the bucket holding the `q`-quantile: the
    /// quantile is at most this (infinite when it fell in `+Inf`).
    pub fn quantile_bound(&self, q: f64) -> Option<f64> {
        if self.count <= 0.0 {
            return None;
        }
        let wanted = q * self.count;
        self.buckets
            .iter()
            .find(|(_, cumulative)| *cumulative >= wanted)
            .map(|(le, _)| *le)
    }

    /// The mean observation.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0.0).then(|| self.sum / self.count)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Against the definition, checked by counting: at least q of the
        /// samples are ≤ the answer, and fewer than q are < it.
        #[test]
        fn percentiles_are_nearest_rank(micros in prop::collection::vec(0u64..10_000, 1..300)) {
            let samples: Vec<Duration> = micros.iter().map(|&m| Duration::from_micros(m)).collect();
            let summary = Summary::of(&samples).unwrap();
            let n = samples.len() as f64;
            for (q, value) in [(0.5, summary.p50), (0.99, summary.p99), (1.0, summary.max)] {
                let at_or_below = samples.iter().filter(|&&s| s <= value).count() as f64;
                let below = samples.iter().filter(|&&s| s < value).count() as f64;
                prop_assert!(at_or_below >= q * n, "q={q} value={value:?}");
                prop_assert!(below < q * n, "q={q} value={value:?}");
            }
            let sum: u64 = micros.iter().sum();
            prop_assert_eq!(summary.mean, Duration::from_micros(sum) / samples.len() as u32);
        }
    }

    #[test]
    fn no_samples_no_summary() {
        assert_eq!(Summary::of(&[]), None);
    }

    const EXPOSITION: &str = "\
# HELP palisade_policy_publish_duration_seconds x
# TYPE palisade_policy_publish_duration_seconds histogram
palisade_policy_publish_duration_seconds_bucket{le=\"0.001\"} 2
palisade_policy_publish_duration_seconds_bucket{le=\"0.005\"} 9
palisade_policy_publish_duration_seconds_bucket{le=\"+Inf\"} 10
palisade_policy_publish_duration_seconds_sum 0.5
palisade_policy_publish_duration_seconds_count 10
palisade_policy_generation 41
palisade_policy_generation_other{a=\"b\"} 7
";

    #[test]
    fn a_histogram_is_read_diffed_and_bounded() {
        let later = Histogram::parse(EXPOSITION, "palisade_policy_publish_duration_seconds")
            .expect("histogram");
        assert_eq!(
            later.buckets,
            vec![(0.001, 2.0), (0.005, 9.0), (f64::INFINITY, 10.0)]
        );
        let earlier = Histogram {
            buckets: vec![(0.001, 1.0), (0.005, 1.0), (f64::INFINITY, 1.0)],
            sum: 0.0005,
            count: 1.0,
        };
        let run = later.since(&earlier).unwrap();
        assert!((run.count - 9.0).abs() < f64::EPSILON);
        assert_eq!(run.quantile_bound(0.1), Some(0.001));
        assert_eq!(run.quantile_bound(0.5), Some(0.005));
        assert_eq!(run.quantile_bound(0.99), Some(f64::INFINITY));
        assert!((run.mean().unwrap() - 0.4995 / 9.0).abs() < 1e-12);
        assert_eq!(
            sample(EXPOSITION, "palisade_policy_generation"),
            Some(41.0),
            "a longer name sharing the prefix must not match"
        );
        assert_eq!(
            sample(EXPOSITION, "palisade_policy_generation_other"),
            Some(7.0)
        );
        assert_eq!(sample(EXPOSITION, "palisade_missing"), None);
    }
}
