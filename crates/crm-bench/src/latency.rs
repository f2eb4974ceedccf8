//! Latency samples and their percentiles, as every benchmark reports them: microseconds,
//! nearest rank (the smallest sample at or above the share asked for).

use std::time::Duration;

/// Latency samples in microseconds, sorted.
#[derive(Debug, Clone, Default)]
pub(crate) struct Latencies(Vec<u64>);

impl Latencies {
    pub(crate) fn new(mut micros: Vec<u64>) -> Latencies {
        micros.sort_unstable();
        Latencies(micros)
    }

    /// The sample at quantile `q` (0.5 for the median); 0 without samples.
    pub(crate) fn at(&self, q: f64) -> u64 {
        let rank = ((self.0.len() as f64 * q).ceil() as usize).saturating_sub(1);
        self.0
            .get(rank.min(self.0.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    }

    /// The largest sample; 0 without samples.
    pub(crate) fn max(&self) -> u64 {
        self.0.last().copied().unwrap_or(0)
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The samples of all of `parts` together.
    pub(crate) fn merged<'a>(parts: impl IntoIterator<Item = &'a Latencies>) -> Latencies {
        Latencies::new(
            parts
                .into_iter()
                .flat_map(|part| part.0.iter().copied())
                .collect(),
        )
    }
}

/// Throughput and latency of one measured run.
pub(crate) struct Figures {
    pub(crate) per_second: f64,
    pub(crate) p50_us: u64,
    pub(crate) p99_us: u64,
}

/// The figures of `latencies`, one per request, completed in `elapsed`.
pub(crate) fn figures(latencies: Vec<u64>, elapsed: Duration) -> Figures {
    let latencies = Latencies::new(latencies);
    Figures {
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50_us: latencies.at(0.50),
        p99_us: latencies.at(0.99),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let latencies = Latencies::new((1..=100).rev().collect());
        assert_eq!(latencies.at(0.5), 50);
        assert_eq!(latencies.at(0.99), 99);
        assert_eq!(latencies.at(1.0), 100);
        assert_eq!(latencies.max(), 100);
        assert_eq!(Latencies::new(vec![7]).at(0.99), 7);
        assert_eq!(Latencies::default().at(0.5), 0);
        let merged = Latencies::merged([&Latencies::new(vec![3, 1]), &Latencies::new(vec![2])]);
        assert_eq!((merged.at(0.5), merged.max(), merged.len()), (2, 3, 3));
    }
}
