//! The funnel read model (`docs/DOMAIN.md`, "Read models"): per pipeline, over all leads and
//! per month of lead creation, the leads in and entering each stage, stage-to-stage
//! conversion, time in stage, pipeline value, won/lost/open, win rate, average deal value,
//! sales cycle and velocity; served by the `funnel.get` query.
//!
//! A deterministic fold (docs/DESIGN.md rule 10): time comes only from `occurred_at`, every map is
//! ordered, and the store (crm-projector's SDK, store format 3) is the whole state, in five
//! tables; nothing is kept in memory across events, and nothing is rebuilt at start:
//!
//! | table | key | row |
//! | --- | --- | --- |
//! | `lead` | lead id | the lead's pipeline, creation time, status, current stage and since when, stages entered, completed stays, estimated value, win |
//! | `pipeline` | name | the stage list of the last `PipelineDefined` for it |
//! | `funnel` | period (`0` and five zero bytes for all leads, or `1` and the month), pipeline | the totals of the pipeline's leads in the period: created, open, won, lost, disqualified, deal values and cycle sum, and per stage current, entered, stays and their sum, open value |
//! | `stay` | period, pipeline, stage, duration (micros, u64 big-endian) | how many completed stays in that stage took that long |
//! | `stay_median` | period, pipeline, stage | the lower middle stay duration, how many are below it and equal to it, out of how many |
//!
//! In the `stay` keys the pipeline and stage are written with each `0` byte as `0 255` and end
//! with `0 1`, so that keys sort by period, pipeline, stage, then duration.
//!
//! The fold keeps the `funnel` rows equal to the sum of each lead's contribution (an event
//! takes the lead's old contribution out and puts the new one in) and the `stay` multisets
//! equal to the leads' stays, moving each median a step when a stay is added; so `funnel.get`
//! reads the pipeline, one `funnel` row and a row or two per stage, whatever the number of
//! leads. Rates, averages and medians are computed when read.
//!
//! Counting rules and the choices the contract leaves open:
//! - A lead enters a stage once: creation enters the first stage, an advance enters only its
//!   target (a skip does not enter the stages skipped), and a revert or a second advance into
//!   a stage entered before does not count again. A revert into a stage the lead had skipped
//!   enters it (every lead in a stage has entered it).
//! - A stay runs from entering a stage to leaving it (advance, revert, win, loss,
//!   disqualification); each completed stay counts in the average and median, so a stage
//!   visited twice has two stays. A stay whose end carries an earlier business time than its
//!   start (a backfill) counts as zero days; likewise the sales cycle.
//! - `current` and `value` count open leads only; `open` excludes won, lost and
//!   disqualified leads; disqualified leads count in neither side of the win rate.
//! - Periods are months (UTC) of the lead's creation: a lead created in October and won in
//!   November counts in October's funnel.
//! - The `default` pipeline exists from the start with `awareness`, `interest`,
//!   `consideration`, `decision`. `PipelineDefined` replaces a pipeline's stage list; leads
//!   keep their stage names and all counts stay keyed by stage name. The reply lists the
//!   current stages in order, then every stage that leads entered but the definition no
//!   longer has, marked `"retired": true`, by name, with no conversion.
//! - Only pipelines that exist (`default`, or one defined in the log) are served; leads of a
//!   pipeline never defined are counted and show if it is defined later.
//! - Events for unknown or closed leads change nothing.
//! - Money sums are exact (`i128`); `value`, `average_deal_value` and `velocity` are JSON
//!   numbers while exact in every parser (else `null`), with `_exact` twins holding the digits
//!   as strings (docs/NATS_API.md, "Big numbers"). The velocity is computed exactly from the
//!   integer sums and rounded once.

mod keys;
mod model;
mod view;

use crm_domain::Month;
use crm_projector::{EventEnvelope, QueryError, ReadModel, StoredTable};
use serde::Deserialize;

use keys::PeriodKey;
use model::Model;

pub use view::{ExactByCurrency, FunnelView, MoneyByCurrency, StageView};

/// The projection's name: its store, durable consumer and status entry.
pub const NAME: &str = "funnel";
/// The queries it answers (`crm.query.<name>`).
pub const QUERIES: &[&str] = &["funnel.get"];

/// The funnel read model. See the crate docs for the rules, the store layout and choices.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FunnelProjection {
    model: Model,
}

impl FunnelProjection {
    pub fn new() -> FunnelProjection {
        FunnelProjection::default()
    }

    /// The funnel of `pipeline` over all its leads (`month: None`) or those created in
    /// `month`; `None` for a pipeline that does not exist. Reads the pipeline, the funnel's
    /// totals and a row or two per stage for its median, however many leads there are.
    pub fn funnel(&self, pipeline: &str, month: Option<Month>) -> Option<FunnelView> {
        let stages = self.model.stages(pipeline)?;
        let key = (PeriodKey(month), pipeline.to_owned());
        let funnel = self.model.funnels.get(&key);
        let median = |stage: &str| self.model.median_stay_micros(&key, stage);
        Some(view::render(
            pipeline,
            &stages,
            month,
            funnel.as_deref(),
            &median,
        ))
    }

    /// The pipelines that exist, by name, with their current stages.
    pub fn pipelines(&self) -> impl Iterator<Item = (String, Vec<String>)> {
        let default = crm_domain::types::DEFAULT_PIPELINE;
        let undefined_default = (!self.model.pipelines.contains_key(&default.to_owned()))
            .then(|| (default.to_owned(), model::default_stages().to_vec()));
        let defined = self
            .model
            .pipelines
            .iter()
            .map(|(name, stages)| (name, stages.into_owned()));
        let mut all: Vec<(String, Vec<String>)> = defined.chain(undefined_default).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all.into_iter()
    }
}

impl ReadModel for FunnelProjection {
    const NAME: &'static str = NAME;
    const QUERIES: &'static [&'static str] = QUERIES;
    const STORE_FORMAT: u32 = 3;

    fn apply(&mut self, event: &EventEnvelope) {
        self.model.apply(event);
    }

    fn tables(&mut self) -> Vec<&mut dyn StoredTable> {
        self.model.tables()
    }

    fn query(
        &self,
        name: &str,
        request: &serde_json::Value,
    ) -> Result<serde_json::Value, QueryError> {
        match name {
            "funnel.get" => {
                let request = FunnelRequest::parse(request)?;
                let view = self
                    .funnel(&request.pipeline, request.month)
                    .ok_or_else(|| {
                        QueryError::NotFound(format!("pipeline {}", request.pipeline))
                    })?;
                serde_json::to_value(view)
                    // A view holds strings, integers, finite floats and string-keyed maps:
                    // rendering cannot fail, but if it ever did the caller gets an error.
                    .map_err(|e| QueryError::Malformed(format!("cannot render the reply: {e}")))
            }
            other => Err(QueryError::UnknownQuery(other.to_owned())),
        }
    }
}

/// A `funnel.get` request. `pipeline` defaults to `default`; `month` is `YYYY-MM` or
/// absent/null for all leads. Other fields (`min_position`, `timeout_ms`) are ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunnelRequest {
    pub pipeline: String,
    pub month: Option<Month>,
}

#[derive(Deserialize)]
struct RawFunnelRequest {
    #[serde(default)]
    pipeline: Option<String>,
    #[serde(default)]
    month: Option<String>,
}

impl FunnelRequest {
    pub fn parse(request: &serde_json::Value) -> Result<FunnelRequest, QueryError> {
        let raw = if request.is_null() {
            RawFunnelRequest {
                pipeline: None,
                month: None,
            }
        } else if request.is_object() {
            RawFunnelRequest::deserialize(request)
                .map_err(|e| QueryError::Malformed(e.to_string()))?
        } else {
            return Err(QueryError::Malformed(
                "the request must be a JSON object".into(),
            ));
        };
        let month = match raw.month {
            None => None,
            Some(text) => Some(Month::parse(&text).ok_or_else(|| {
                QueryError::Malformed(format!("`month` must be YYYY-MM, not `{text}`"))
            })?),
        };
        Ok(FunnelRequest {
            pipeline: raw
                .pipeline
                .unwrap_or_else(|| crm_domain::types::DEFAULT_PIPELINE.to_owned()),
            month,
        })
    }
}
