//! The funnel state as it goes on the wire (`funnel.get`), computed from the stored totals
//! when read: rates and averages are never stored.

use std::collections::{BTreeMap, BTreeSet};

use crm_domain::money::{div_round, json_safe, product_ratio_round, ExactMinor, MinorSum};
use crm_domain::time::MICROS_PER_DAY;
use crm_domain::{Currency, Month};
use serde::{Deserialize, Serialize};

use crate::model::{Funnel, MoneySum, StageTotals};

/// Money per currency, in minor units, as JSON numbers: `{"EUR": 200000}`. A figure beyond
/// 2^53 - 1 in magnitude (not exact as a JSON number in every parser) is `null`; the
/// matching `_exact` field always has it ([`ExactByCurrency`]).
pub type MoneyByCurrency = BTreeMap<Currency, Option<i64>>;

/// The same money figures, exact, as strings of decimal digits: `{"EUR": "200000"}`.
pub type ExactByCurrency = BTreeMap<Currency, ExactMinor>;

/// One pipeline's funnel over all leads (`month: null`) or the leads created in a month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunnelView {
    pub pipeline: String,
    pub month: Option<Month>,
    /// The pipeline's stages in order, then any stage no longer in it that leads entered
    /// (`retired`), by name.
    pub stages: Vec<StageView>,
    /// Leads created (in the period): open + won + lost + disqualified.
    pub created: u64,
    pub open: u64,
    pub won: u64,
    pub lost: u64,
    pub disqualified: u64,
    /// won / (won + lost); `null` before the first win or loss.
    pub win_rate: Option<f64>,
    /// Mean deal value of the won leads per currency, rounded half away from zero; `null`
    /// before the first win.
    pub average_deal_value: Option<MoneyByCurrency>,
    pub average_deal_value_exact: Option<ExactByCurrency>,
    /// Mean days from creation to win; `null` before the first win.
    pub average_sales_cycle_days: Option<f64>,
    /// open x win rate x average deal value / average cycle days, per currency, computed
    /// exactly from the integer sums and rounded half away from zero; `null` when a factor
    /// is missing or the cycle is zero days.
    pub velocity: Option<MoneyByCurrency>,
    pub velocity_exact: Option<ExactByCurrency>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageView {
    pub stage: String,
    /// Open leads in the stage now.
    pub current: u64,
    /// Leads that entered the stage, each once.
    pub entered: u64,
    /// entered(next stage) / entered(this stage); `null` for the last stage, a retired
    /// stage or when none entered this one.
    pub conversion_to_next: Option<f64>,
    /// Over completed stays (entering to leaving), in days; `null` when none completed.
    pub avg_days_in_stage: Option<f64>,
    pub median_days_in_stage: Option<f64>,
    /// Sum of the estimated values of the open leads in the stage, per currency.
    pub value: MoneyByCurrency,
    pub value_exact: ExactByCurrency,
    /// The stage is not in the pipeline's current definition (it was redefined).
    pub retired: bool,
}

pub(crate) fn render(
    pipeline: &str,
    stages: &[String],
    month: Option<Month>,
    funnel: Option<&Funnel>,
    median_stay_micros: &dyn Fn(&str) -> Option<f64>,
) -> FunnelView {
    let empty = Funnel::default();
    let funnel = funnel.unwrap_or(&empty);
    let no_stage = StageTotals::default();
    let totals = |stage: &str| funnel.stages.get(stage).unwrap_or(&no_stage);

    // A definition holds no duplicates (the domain refuses them); keep the first anyway.
    let mut seen = BTreeSet::new();
    let defined: Vec<&str> = stages
        .iter()
        .map(String::as_str)
        .filter(|stage| seen.insert(*stage))
        .collect();
    let mut views: Vec<StageView> = defined
        .iter()
        .enumerate()
        .map(|(i, stage)| {
            let next = defined.get(i + 1).map(|next| totals(next).entered);
            stage_view(stage, totals(stage), next, false, median_stay_micros)
        })
        .collect();
    views.extend(
        funnel
            .stages
            .iter()
            .filter(|(stage, _)| !seen.contains(stage.as_str()))
            .map(|(stage, totals)| stage_view(stage, totals, None, true, median_stay_micros)),
    );

    let win_rate = ratio(funnel.won, funnel.won + funnel.lost);
    let average_sales_cycle_days = (funnel.won > 0)
        .then(|| funnel.cycle_micros_sum as f64 / funnel.won as f64 / MICROS_PER_DAY as f64);
    let average_deal_value: Option<BTreeMap<Currency, MinorSum>> = (!funnel.deal_values.is_empty())
        .then(|| {
            funnel
                .deal_values
                .iter()
                .map(|(currency, sum)| (*currency, mean_rounded(sum)))
                .collect()
        });
    let velocity: Option<BTreeMap<Currency, MinorSum>> = match (win_rate, average_sales_cycle_days)
    {
        (Some(_), Some(days)) if days > 0.0 && !funnel.deal_values.is_empty() => funnel
            .deal_values
            .iter()
            .map(|(currency, sum)| Some((*currency, velocity(funnel, sum)?)))
            .collect(),
        _ => None,
    };
    FunnelView {
        pipeline: pipeline.to_owned(),
        month,
        stages: views,
        created: funnel.created,
        open: funnel.open,
        won: funnel.won,
        lost: funnel.lost,
        disqualified: funnel.disqualified,
        win_rate,
        average_deal_value: average_deal_value.as_ref().map(numbers),
        average_deal_value_exact: average_deal_value.as_ref().map(exact),
        average_sales_cycle_days,
        velocity: velocity.as_ref().map(numbers),
        velocity_exact: velocity.as_ref().map(exact),
    }
}

/// open x win rate x mean deal value / mean cycle days
/// = open x (won / (won + lost)) x (deal sum / deals) / (cycle micros / won / micros a day)
/// = open x won x won x micros a day x deal sum / ((won + lost) x deals x cycle micros),
/// formed exactly in wide arithmetic and rounded once, half away from zero. `None` when the
/// cycle sum is not positive, or (beyond any real figure) outside `i128`.
fn velocity(funnel: &Funnel, deals: &MoneySum) -> Option<MinorSum> {
    if funnel.cycle_micros_sum <= 0 {
        return None;
    }
    let won = u128::from(funnel.won);
    let magnitude = product_ratio_round(
        &[
            u128::from(funnel.open),
            won,
            won,
            MICROS_PER_DAY.unsigned_abs().into(),
            deals.sum.unsigned_abs(),
        ],
        &[
            won + u128::from(funnel.lost),
            u128::from(deals.count),
            funnel.cycle_micros_sum.unsigned_abs(),
        ],
    )?;
    let magnitude = MinorSum::try_from(magnitude).ok()?;
    Some(if deals.sum < 0 { -magnitude } else { magnitude })
}

/// JSON numbers where exact in every parser, else `null`.
fn numbers(sums: &BTreeMap<Currency, MinorSum>) -> MoneyByCurrency {
    sums.iter().map(|(c, sum)| (*c, json_safe(*sum))).collect()
}

fn exact(sums: &BTreeMap<Currency, MinorSum>) -> ExactByCurrency {
    sums.iter().map(|(c, sum)| (*c, ExactMinor(*sum))).collect()
}

fn stage_view(
    stage: &str,
    totals: &StageTotals,
    next_entered: Option<u64>,
    retired: bool,
    median_stay_micros: &dyn Fn(&str) -> Option<f64>,
) -> StageView {
    let days = |micros: f64| micros / MICROS_PER_DAY as f64;
    StageView {
        stage: stage.to_owned(),
        current: totals.current,
        entered: totals.entered,
        conversion_to_next: next_entered.and_then(|next| ratio(next, totals.entered)),
        avg_days_in_stage: (totals.stays > 0)
            .then(|| days(totals.stay_micros_sum as f64 / totals.stays as f64)),
        median_days_in_stage: (totals.stays > 0)
            .then(|| median_stay_micros(stage))
            .flatten()
            .map(days),
        value: totals
            .value
            .iter()
            .map(|(currency, sum)| (*currency, json_safe(sum.sum)))
            .collect(),
        value_exact: totals
            .value
            .iter()
            .map(|(currency, sum)| (*currency, ExactMinor(sum.sum)))
            .collect(),
        retired,
    }
}

fn ratio(numerator: u64, denominator: u64) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

/// The median of a multiset of durations (the mean of the two middle ones for an even
/// count), by a full scan: what the stored cursors must agree with.
#[cfg(test)]
pub(crate) fn median_micros(durations: &BTreeMap<u64, u64>) -> Option<f64> {
    let count: u64 = durations.values().sum();
    if count == 0 {
        return None;
    }
    // The 0-based ranks of the middle element(s).
    let (low, high) = ((count - 1) / 2, count / 2);
    let mut below = 0u64;
    let mut low_value = None;
    for (duration, n) in durations {
        let last_rank = below + n - 1;
        if low_value.is_none() && low <= last_rank {
            low_value = Some(*duration);
        }
        if high <= last_rank {
            let low_value = low_value.unwrap_or(*duration);
            return Some((low_value as f64 + *duration as f64) / 2.0);
        }
        below += n;
    }
    None
}

/// Integer mean, halves away from zero, exact.
pub(crate) fn mean_rounded(sum: &MoneySum) -> MinorSum {
    div_round(sum.sum, i128::from(sum.count)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{PeriodKey, StageKey};
    use crate::model::Model;

    fn multiset(values: &[u64]) -> BTreeMap<u64, u64> {
        let mut set = BTreeMap::new();
        for value in values {
            *set.entry(*value).or_default() += 1;
        }
        set
    }

    /// The median of `values` by a full scan, and as the model reads it from its stored
    /// cursor, which must agree.
    fn median(values: &[u64]) -> Option<f64> {
        let scanned = median_micros(&multiset(values));
        let mut model = Model::default();
        let funnel = (PeriodKey(None), "p".to_owned());
        let scope = StageKey {
            period: funnel.0,
            pipeline: funnel.1.clone(),
            stage: "s".to_owned(),
        };
        for value in values {
            model.stays.insert(&scope, *value);
        }
        assert_eq!(
            model.median_stay_micros(&funnel, "s"),
            scanned,
            "{values:?}"
        );
        scanned
    }

    #[test]
    fn medians_of_odd_even_and_repeated_durations() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[7]), Some(7.0));
        assert_eq!(median(&[1, 9]), Some(5.0));
        assert_eq!(median(&[5, 1, 9]), Some(5.0));
        assert_eq!(median(&[2, 2, 2, 10]), Some(2.0));
        assert_eq!(median(&[1, 2, 10, 10]), Some(6.0));
        assert_eq!(median(&[0, 0, 3, 3, 3, 4]), Some(3.0));
        assert_eq!(median(&[0, 0, 0, 3, 3, 4]), Some(1.5));
        assert_eq!(median(&[4, 3, 0, 3, 0, 0]), Some(1.5));
    }

    #[test]
    fn means_round_half_away_from_zero() {
        let mean = |sum: i128, count: u64| mean_rounded(&MoneySum { sum, count });
        assert_eq!(mean(400_000, 2), 200_000);
        assert_eq!(mean(5, 2), 3);
        assert_eq!(mean(-5, 2), -3);
        assert_eq!(mean(190_000, 3), 63_333);
        assert_eq!(mean(200_000, 3), 66_667);
        assert_eq!(mean(7, 0), 0);
        let beyond = i128::from(i64::MAX) * 3;
        assert_eq!(mean(beyond, 2), i128::from(i64::MAX) * 3 / 2 + 1);
    }
}
