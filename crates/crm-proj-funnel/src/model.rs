//! The funnel read model: pipeline definitions, one record per lead, and the per-pipeline,
//! per-period totals summed from the lead records (all of it in stored tables), plus the
//! fold that keeps the totals current.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use crm_domain::event::{AggregateEvent, LeadCreated, LeadEvent, LeadWon, PipelineEvent};
use crm_domain::money::MinorSum;
use crm_domain::types::{LeadStatus, DEFAULT_PIPELINE, DEFAULT_PIPELINE_STAGES};
use crm_domain::{Currency, Money, Timestamp};
use crm_projector::{EventEnvelope, StoredTable, Table};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::keys::{PeriodKey, StageKey};
use crm_projector::ranked::Ranked;

/// A lead's path through its pipeline, as far as the funnel needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LeadRecord {
    pub pipeline: String,
    pub created_at: Timestamp,
    pub status: LeadStatus,
    /// The stage the lead is in (or was in when it closed).
    pub stage: String,
    /// When it entered `stage`.
    pub stage_since: Timestamp,
    /// Every stage it has entered, each once.
    pub entered: BTreeSet<String>,
    /// Completed stays, in order.
    pub stays: Vec<Stay>,
    pub estimated_value: Option<Money>,
    pub win: Option<Win>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Stay {
    pub stage: String,
    pub micros: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Win {
    pub deal_value: Money,
    /// Business time from creation to the win.
    pub cycle_micros: i64,
}

/// A duration between two business times, never negative: a backfilled event may carry an
/// earlier time than the one before it, and such a stay counts as zero.
fn elapsed_micros(from: Timestamp, to: Timestamp) -> i64 {
    to.as_micros().saturating_sub(from.as_micros()).max(0)
}

impl LeadRecord {
    fn is_open(&self) -> bool {
        self.status == LeadStatus::Open
    }

    /// Ends the stay in the current stage at `at`.
    fn leave(&mut self, at: Timestamp) {
        self.stays.push(Stay {
            stage: self.stage.clone(),
            micros: elapsed_micros(self.stage_since, at),
        });
    }

    /// Enters `stage` at `at`; a stage entered before is not entered again.
    fn enter(&mut self, stage: &str, at: Timestamp) {
        stage.clone_into(&mut self.stage);
        self.stage_since = at;
        if !self.entered.contains(stage) {
            self.entered.insert(stage.to_owned());
        }
    }
}

/// A funnel's key: its period (all leads, or those created in one month, UTC), then its
/// pipeline.
pub(crate) type FunnelKey = (PeriodKey, String);

/// Totals over the leads of one pipeline and period: the sum of each lead's contribution
/// ([`Funnel::contribute`], and its stays), kept exact so that removing a contribution undoes
/// adding it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Funnel {
    pub stages: BTreeMap<String, StageTotals>,
    pub created: u64,
    pub open: u64,
    pub won: u64,
    pub lost: u64,
    pub disqualified: u64,
    pub deal_values: BTreeMap<Currency, MoneySum>,
    pub cycle_micros_sum: i128,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StageTotals {
    /// Open leads in the stage now.
    pub current: u64,
    /// Leads that ever entered the stage.
    pub entered: u64,
    /// Completed stays: their number and total (their durations, for the median, are in
    /// [`Model::stays`]).
    pub stays: u64,
    pub stay_micros_sum: i128,
    /// Estimated values of the open leads in the stage now.
    pub value: BTreeMap<Currency, MoneySum>,
}

/// A sum of amounts in one currency and how many: exact (`MinorSum`: an i128 sum of event
/// amounts cannot overflow, see `crm_domain::money::MinorSum`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MoneySum {
    pub sum: MinorSum,
    pub count: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sign {
    Add,
    Remove,
}

fn count(value: &mut u64, sign: Sign) {
    *value = match sign {
        Sign::Add => value.saturating_add(1),
        Sign::Remove => value.saturating_sub(1),
    };
}

fn sum(value: &mut i128, amount: i128, sign: Sign) {
    match sign {
        Sign::Add => *value += amount,
        Sign::Remove => *value -= amount,
    }
}

fn money(sums: &mut BTreeMap<Currency, MoneySum>, money: Money, sign: Sign) {
    let entry = sums.entry(money.currency).or_default();
    count(&mut entry.count, sign);
    sum(&mut entry.sum, i128::from(money.amount_minor), sign);
    if entry.count == 0 {
        sums.remove(&money.currency);
    }
}

impl StageTotals {
    fn is_empty(&self) -> bool {
        self.current == 0
            && self.entered == 0
            && self.stays == 0
            && self.stay_micros_sum == 0
            && self.value.is_empty()
    }
}

impl Funnel {
    fn is_empty(&self) -> bool {
        self.stages.is_empty()
            && self.created == 0
            && self.open == 0
            && self.won == 0
            && self.lost == 0
            && self.disqualified == 0
            && self.deal_values.is_empty()
            && self.cycle_micros_sum == 0
    }

    fn stage(&mut self, name: &str) -> &mut StageTotals {
        self.stages.entry(name.to_owned()).or_default()
    }

    /// Adds or removes everything one lead counts for but its stays (see
    /// [`Model::replace`]).
    fn contribute(&mut self, lead: &LeadRecord, sign: Sign) {
        count(&mut self.created, sign);
        for stage in &lead.entered {
            count(&mut self.stage(stage).entered, sign);
        }
        match lead.status {
            LeadStatus::Open => {
                count(&mut self.open, sign);
                let totals = self.stage(&lead.stage);
                count(&mut totals.current, sign);
                if let Some(value) = lead.estimated_value {
                    money(&mut totals.value, value, sign);
                }
            }
            LeadStatus::Won => {
                count(&mut self.won, sign);
                if let Some(win) = &lead.win {
                    money(&mut self.deal_values, win.deal_value, sign);
                    sum(
                        &mut self.cycle_micros_sum,
                        i128::from(win.cycle_micros),
                        sign,
                    );
                }
            }
            LeadStatus::Lost => count(&mut self.lost, sign),
            LeadStatus::Disqualified => count(&mut self.disqualified, sign),
        }
    }

    /// Adds (`n` > 0) or removes `n` stays of `micros` in `stage`.
    fn add_stays(&mut self, stage: &str, micros: u64, n: i64) {
        let totals = self.stage(stage);
        totals.stays = totals.stays.saturating_add_signed(n);
        totals.stay_micros_sum += i128::from(n) * i128::from(micros);
    }
}

/// The stay durations of every (period, pipeline, stage), with their lower median.
pub(crate) type Stays = Ranked<StageKey, 50>;

/// The whole read model, all of it in stored tables: the pipelines defined in the log, the
/// leads, and the funnels summed from the leads (kept current by the fold).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Model {
    /// Pipelines defined in the log; `default` exists without being defined.
    pub pipelines: Table<String, Vec<String>>,
    pub leads: Table<Uuid, LeadRecord>,
    pub funnels: Table<FunnelKey, Funnel>,
    pub stays: Stays,
}

impl Default for Model {
    fn default() -> Model {
        Model {
            pipelines: Table::new("pipeline"),
            leads: Table::new("lead"),
            funnels: Table::new("funnel"),
            stays: Ranked::new("stay_median", "stay"),
        }
    }
}

/// The stages of the `default` pipeline before any `PipelineDefined` for it
/// (`docs/DOMAIN.md`).
pub(crate) fn default_stages() -> &'static [String] {
    static STAGES: std::sync::LazyLock<Vec<String>> =
        std::sync::LazyLock::new(|| DEFAULT_PIPELINE_STAGES.map(str::to_owned).to_vec());
    &STAGES
}

/// The funnels a lead counts in: its pipeline's over all leads and over its creation month.
fn funnel_keys(lead: &LeadRecord) -> [FunnelKey; 2] {
    [None, Some(lead.created_at.month())].map(|period| (PeriodKey(period), lead.pipeline.clone()))
}

/// A stay's duration as stored in [`Stays`] (never negative: see [`elapsed_micros`]).
fn stay_micros(stay: &Stay) -> u64 {
    u64::try_from(stay.micros).unwrap_or(0)
}

impl Model {
    /// Folds one event in. Total: an event for a lead the model does not know, or for a
    /// closed lead, changes nothing.
    pub fn apply(&mut self, envelope: &EventEnvelope) {
        let at = envelope.occurred_at;
        // Every lead and pipeline event is named, so a new one is a compile error here until
        // the funnel decides what it means; other aggregates do not touch the funnel.
        let lead_event = match envelope.event.split() {
            AggregateEvent::Pipeline(PipelineEvent::PipelineDefined(e)) => {
                self.pipelines.insert(e.pipeline.clone(), e.stages.clone());
                return;
            }
            AggregateEvent::Lead(lead_event) => lead_event,
            AggregateEvent::Customer(_)
            | AggregateEvent::Order(_)
            | AggregateEvent::Ticket(_)
            | AggregateEvent::Campaign(_) => return,
        };
        match lead_event {
            LeadEvent::LeadCreated(e) => self.create(e, at),
            LeadEvent::LeadDetailsUpdated(e) => {
                if let Some(value) = e.estimated_value {
                    self.update(e.lead_id, |lead| lead.estimated_value = Some(value));
                }
            }
            LeadEvent::FunnelStageAdvanced(e) => self.update(e.lead_id, |lead| {
                lead.leave(at);
                lead.enter(&e.to_stage, at);
            }),
            // Being in a stage means having entered it, also when a revert reaches a stage
            // the lead skipped; a stage entered before does not count again.
            LeadEvent::FunnelStageReverted(e) => self.update(e.lead_id, |lead| {
                lead.leave(at);
                lead.enter(&e.to_stage, at);
            }),
            LeadEvent::LeadWon(e) => self.win(e, at),
            LeadEvent::LeadLost(e) => self.update(e.lead_id, |lead| {
                lead.leave(at);
                lead.status = LeadStatus::Lost;
            }),
            LeadEvent::LeadDisqualified(e) => self.update(e.lead_id, |lead| {
                lead.leave(at);
                lead.status = LeadStatus::Disqualified;
            }),
            // Scores, owners and qualification are not funnel facts.
            LeadEvent::LeadScored(_) | LeadEvent::LeadAssigned(_) | LeadEvent::LeadQualified(_) => {
            }
        }
    }

    /// The tables `crm_projector::ReadModel` stores: the whole state.
    pub fn tables(&mut self) -> Vec<&mut dyn StoredTable> {
        let mut tables: Vec<&mut dyn StoredTable> =
            vec![&mut self.pipelines, &mut self.leads, &mut self.funnels];
        tables.extend(self.stays.tables());
        tables
    }

    /// The stages of an existing pipeline.
    pub fn stages(&self, pipeline: &str) -> Option<Cow<'_, [String]>> {
        match self.pipelines.get(&pipeline.to_owned()) {
            Some(Cow::Borrowed(stages)) => Some(Cow::Borrowed(stages.as_slice())),
            Some(Cow::Owned(stages)) => Some(Cow::Owned(stages)),
            None if pipeline == DEFAULT_PIPELINE => Some(Cow::Borrowed(default_stages())),
            None => None,
        }
    }

    /// The median of the completed stays in a funnel's stage, in microseconds (the mean of
    /// the two middle ones for an even count); `None` when none completed. Reads a row or
    /// two, however many stays there are.
    pub fn median_stay_micros(&self, funnel: &FunnelKey, stage: &str) -> Option<f64> {
        let scope = StageKey {
            period: funnel.0,
            pipeline: funnel.1.clone(),
            stage: stage.to_owned(),
        };
        // The cursor is on the lower middle value (rank (count - 1) / 2, from 0); the upper
        // one (rank count / 2) is the same value or the next.
        let cursor = self.stays.cursor(&scope)?;
        let upper = if cursor.count / 2 < cursor.below.saturating_add(cursor.at) {
            cursor.value
        } else {
            self.stays.next(&scope, cursor.value)?.0
        };
        Some((cursor.value as f64 + upper as f64) / 2.0)
    }

    fn create(&mut self, e: &LeadCreated, at: Timestamp) {
        if self.leads.contains_key(&e.lead_id) {
            return;
        }
        let lead = LeadRecord {
            pipeline: e.pipeline.clone(),
            created_at: at,
            status: LeadStatus::Open,
            stage: e.stage.clone(),
            stage_since: at,
            entered: BTreeSet::from([e.stage.clone()]),
            stays: Vec::new(),
            estimated_value: e.estimated_value,
            win: None,
        };
        self.replace(None, &lead);
        self.leads.insert(e.lead_id, lead);
    }

    fn win(&mut self, e: &LeadWon, at: Timestamp) {
        self.update(e.lead_id, |lead| {
            lead.leave(at);
            lead.status = LeadStatus::Won;
            lead.win = Some(Win {
                deal_value: e.deal_value,
                cycle_micros: elapsed_micros(lead.created_at, at),
            });
        });
    }

    /// Changes an open lead, keeping the funnels equal to the sum of the leads'
    /// contributions.
    fn update(&mut self, id: Uuid, change: impl FnOnce(&mut LeadRecord)) {
        let Some(lead) = self.leads.get(&id).map(Cow::into_owned) else {
            return;
        };
        if !lead.is_open() {
            return;
        }
        let mut changed = lead.clone();
        change(&mut changed);
        if changed == lead {
            return;
        }
        self.replace(Some(&lead), &changed);
        self.leads.insert(id, changed);
    }

    /// Takes `old`'s contribution (if any) out of the funnels and puts `new`'s in: in each
    /// funnel either counts in, the totals of the one go out and the other's come in; of the
    /// stays, only the ones that differ (a changed lead has one more) are taken out or added.
    fn replace(&mut self, old: Option<&LeadRecord>, new: &LeadRecord) {
        let stays = stay_changes(old, new);
        let mut keys: BTreeSet<FunnelKey> = BTreeSet::new();
        keys.extend(old.map(funnel_keys).into_iter().flatten());
        keys.extend(funnel_keys(new));
        for key in keys {
            let empty = self.funnels.upsert(key.clone(), |funnel| {
                if let Some(old) = old.filter(|old| funnel_keys(old).contains(&key)) {
                    funnel.contribute(old, Sign::Remove);
                }
                if funnel_keys(new).contains(&key) {
                    funnel.contribute(new, Sign::Add);
                }
                for ((_, stage, micros), n) in stays.iter().filter(|((k, _, _), _)| *k == key) {
                    funnel.add_stays(stage, *micros, *n);
                }
                funnel.stages.retain(|_, totals| !totals.is_empty());
                funnel.is_empty()
            });
            if empty {
                self.funnels.remove(&key);
            }
        }
        for ((key, stage, micros), n) in stays {
            let scope = StageKey {
                period: key.0,
                pipeline: key.1,
                stage,
            };
            for _ in 0..n.unsigned_abs() {
                if n > 0 {
                    self.stays.insert(&scope, micros);
                } else {
                    self.stays.remove(&scope, micros);
                }
            }
        }
    }
}

/// A stay in a funnel: the funnel, the stage and the duration in microseconds.
type StayIn = (FunnelKey, String, u64);

/// The stays of `new` in its funnels minus those of `old` in its funnels, as net counts (none
/// zero). A changed lead is in the same funnels and has the same stays and then some: only
/// the stays after the common ones are compared.
fn stay_changes(old: Option<&LeadRecord>, new: &LeadRecord) -> BTreeMap<StayIn, i64> {
    let common = match old {
        Some(old) if funnel_keys(old) == funnel_keys(new) => old
            .stays
            .iter()
            .zip(&new.stays)
            .take_while(|(a, b)| a == b)
            .count(),
        _ => 0,
    };
    let mut changes: BTreeMap<StayIn, i64> = BTreeMap::new();
    let mut add = |lead: &LeadRecord, n: i64| {
        for key in funnel_keys(lead) {
            for stay in lead.stays.iter().skip(common) {
                let change = changes
                    .entry((key.clone(), stay.stage.clone(), stay_micros(stay)))
                    .or_default();
                *change += n;
            }
        }
    };
    if let Some(old) = old {
        add(old, -1);
    }
    add(new, 1);
    changes.retain(|_, n| *n != 0);
    changes
}

#[cfg(test)]
mod tests {
    use crm_proj_testkit::{arbitrary_stream, check_while_folding, seeds, valid_stream};
    use proptest::prelude::*;

    use super::*;
    use crate::view::median_micros;

    type Multisets = BTreeMap<StageKey, BTreeMap<u64, u64>>;

    /// The funnels and the stay durations summed afresh from every lead record: what the
    /// fold keeps current, by a full scan.
    fn recount(model: &Model) -> (BTreeMap<FunnelKey, Funnel>, Multisets) {
        let mut funnels: BTreeMap<FunnelKey, Funnel> = BTreeMap::new();
        let mut stays: Multisets = BTreeMap::new();
        for lead in model.leads.values() {
            for key in funnel_keys(&lead) {
                let funnel = funnels.entry(key.clone()).or_default();
                funnel.contribute(&lead, Sign::Add);
                for stay in &lead.stays {
                    funnel.add_stays(&stay.stage, stay_micros(stay), 1);
                    let scope = StageKey {
                        period: key.0,
                        pipeline: key.1.clone(),
                        stage: stay.stage.clone(),
                    };
                    let durations = stays.entry(scope).or_default();
                    *durations.entry(stay_micros(stay)).or_default() += 1;
                }
            }
        }
        (funnels, stays)
    }

    fn check_against_recount(model: &Model) -> Result<(), TestCaseError> {
        let (funnels, stays) = recount(model);
        let stored: BTreeMap<FunnelKey, Funnel> = model
            .funnels
            .iter()
            .map(|(key, funnel)| (key, funnel.into_owned()))
            .collect();
        prop_assert_eq!(stored, funnels);
        prop_assert_eq!(&model.stays.all().unwrap(), &stays);
        for (scope, durations) in &stays {
            let funnel = (scope.period, scope.pipeline.clone());
            prop_assert_eq!(
                model.median_stay_micros(&funnel, &scope.stage),
                median_micros(durations)
            );
        }
        Ok(())
    }

    fn check_stream(envelopes: &[EventEnvelope]) -> Result<(), TestCaseError> {
        check_while_folding(envelopes, 10, Model::apply, check_against_recount)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn stored_funnels_equal_a_recount_of_valid_streams(seeds in seeds(120)) {
            check_stream(&valid_stream(&seeds))?;
        }

        #[test]
        fn stored_funnels_equal_a_recount_of_arbitrary_streams(seeds in seeds(120)) {
            check_stream(&arbitrary_stream(&seeds))?;
        }
    }
}
