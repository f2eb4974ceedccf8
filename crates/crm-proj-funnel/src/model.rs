//! The funnel read model in memory: pipeline definitions and one record per lead (stored),
//! and the per-pipeline, per-period totals derived from the lead records, plus the fold.

use std::collections::{BTreeMap, BTreeSet};

use crm_domain::event::{AggregateEvent, LeadCreated, LeadEvent, LeadWon, PipelineEvent};
use crm_domain::money::MinorSum;
use crm_domain::types::{LeadStatus, DEFAULT_PIPELINE, DEFAULT_PIPELINE_STAGES};
use crm_domain::{Currency, Money, Month, Timestamp};
use crm_projector::{EventEnvelope, StoredTable, Table};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

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

/// The period a funnel covers: all leads, or those created in one month (UTC).
pub(crate) type Period = Option<Month>;

/// Totals over the leads of one pipeline and period: the sum of each lead's contribution
/// ([`Funnel::contribute`]), kept exact so that removing a contribution undoes adding it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StageTotals {
    /// Open leads in the stage now.
    pub current: u64,
    /// Leads that ever entered the stage.
    pub entered: u64,
    /// Completed stays: their number, total and multiset of durations (for the median).
    pub stays: u64,
    pub stay_micros_sum: i128,
    pub stay_micros: BTreeMap<i64, u64>,
    /// Estimated values of the open leads in the stage now.
    pub value: BTreeMap<Currency, MoneySum>,
}

/// A sum of amounts in one currency and how many: exact (`MinorSum`: an i128 sum of event
/// amounts cannot overflow, see `crm_domain::money::MinorSum`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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
            && self.stay_micros.is_empty()
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
    }

    fn stage(&mut self, name: &str) -> &mut StageTotals {
        self.stages.entry(name.to_owned()).or_default()
    }

    /// Adds or removes everything one lead counts for.
    fn contribute(&mut self, lead: &LeadRecord, sign: Sign) {
        count(&mut self.created, sign);
        for stage in &lead.entered {
            count(&mut self.stage(stage).entered, sign);
        }
        for stay in &lead.stays {
            let totals = self.stage(&stay.stage);
            count(&mut totals.stays, sign);
            sum(&mut totals.stay_micros_sum, i128::from(stay.micros), sign);
            let durations = totals.stay_micros.entry(stay.micros).or_default();
            count(durations, sign);
            if *durations == 0 {
                totals.stay_micros.remove(&stay.micros);
            }
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
        self.stages.retain(|_, totals| !totals.is_empty());
    }
}

/// The whole read model: the stored tables (pipelines defined in the log, leads) and the
/// funnels derived from the leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Model {
    /// Pipelines defined in the log; `default` exists without being defined.
    pub pipelines: Table<String, Vec<String>>,
    pub leads: Table<Uuid, LeadRecord>,
    pub funnels: BTreeMap<(String, Period), Funnel>,
}

impl Default for Model {
    fn default() -> Model {
        Model {
            pipelines: Table::new("pipeline"),
            leads: Table::new("lead"),
            funnels: BTreeMap::new(),
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

    /// The tables `crm_projector::ReadModel` stores and restores.
    pub fn tables(&mut self) -> Vec<&mut dyn StoredTable> {
        vec![&mut self.pipelines, &mut self.leads]
    }

    /// The stages of an existing pipeline.
    pub fn stages(&self, pipeline: &str) -> Option<&[String]> {
        match self.pipelines.get(&pipeline.to_owned()) {
            Some(stages) => Some(stages),
            None if pipeline == DEFAULT_PIPELINE => Some(default_stages()),
            None => None,
        }
    }

    /// Recomputes the derived funnels from the lead records (after a restore).
    pub fn rebuild_funnels(&mut self) {
        self.funnels.clear();
        for lead in self.leads.values() {
            contribute(&mut self.funnels, lead, Sign::Add);
        }
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
        contribute(&mut self.funnels, &lead, Sign::Add);
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
    /// contributions: the old contribution comes out, the new one goes in.
    fn update(&mut self, id: Uuid, change: impl FnOnce(&mut LeadRecord)) {
        let Some(lead) = self.leads.get(&id) else {
            return;
        };
        if !lead.is_open() {
            return;
        }
        let mut changed = lead.clone();
        change(&mut changed);
        if &changed == lead {
            return;
        }
        contribute(&mut self.funnels, lead, Sign::Remove);
        contribute(&mut self.funnels, &changed, Sign::Add);
        self.leads.insert(id, changed);
    }
}

/// Adds or removes a lead's contribution to its pipeline's funnels (all time and its month).
fn contribute(funnels: &mut BTreeMap<(String, Period), Funnel>, lead: &LeadRecord, sign: Sign) {
    for period in [None, Some(lead.created_at.month())] {
        let key = (lead.pipeline.clone(), period);
        let funnel = funnels.entry(key.clone()).or_default();
        funnel.contribute(lead, sign);
        if funnel.is_empty() {
            funnels.remove(&key);
        }
    }
}
