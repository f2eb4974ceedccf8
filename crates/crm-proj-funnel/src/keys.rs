//! The funnel's own table keys: a period (all leads, or a month of creation) and a stage of a
//! pipeline in a period. Their bytes sort like their `Ord` (crm-projector's `TableKey`).

use crm_domain::Month;
use crm_projector::table::FixedWidthKey;
use crm_projector::TableKey;

/// The period a funnel covers: all leads (`None`, first) or those created in one month.
/// Six bytes: `0` and five zeros, or `1` and the month's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct PeriodKey(pub Option<Month>);

const MONTH_WIDTH: usize = <Month as FixedWidthKey>::WIDTH;

impl TableKey for PeriodKey {
    fn encode_key(&self, out: &mut Vec<u8>) {
        match self.0 {
            None => out.extend_from_slice(&[0; 1 + MONTH_WIDTH]),
            Some(month) => {
                out.push(1);
                month.encode_key(out);
            }
        }
    }

    fn decode_key(bytes: &[u8]) -> Option<PeriodKey> {
        match bytes.split_first()? {
            (0, rest) if rest == [0; MONTH_WIDTH] => Some(PeriodKey(None)),
            (1, rest) => Month::decode_key(rest).map(|month| PeriodKey(Some(month))),
            _ => None,
        }
    }
}

impl FixedWidthKey for PeriodKey {
    const WIDTH: usize = 1 + MONTH_WIDTH;
}

/// A stage of a pipeline in a period: the scope of a multiset of stay durations. Encoded as
/// the period, then the pipeline and the stage, each with its `0` bytes written `0 255` and
/// ended by `0 1`: self-delimiting, and sorting like the strings.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct StageKey {
    pub period: PeriodKey,
    pub pipeline: String,
    pub stage: String,
}

fn encode_text(text: &str, out: &mut Vec<u8>) {
    for byte in text.bytes() {
        match byte {
            0 => out.extend_from_slice(&[0, 255]),
            other => out.push(other),
        }
    }
    out.extend_from_slice(&[0, 1]);
}

/// A text written by [`encode_text`] and the bytes after it.
fn decode_text(bytes: &[u8]) -> Option<(String, &[u8])> {
    let mut text = Vec::new();
    let mut rest = bytes;
    loop {
        match rest {
            [0, 1, after @ ..] => return Some((String::from_utf8(text).ok()?, after)),
            [0, 255, after @ ..] => {
                text.push(0);
                rest = after;
            }
            [0, ..] | [] => return None,
            [byte, after @ ..] => {
                text.push(*byte);
                rest = after;
            }
        }
    }
}

impl TableKey for StageKey {
    fn encode_key(&self, out: &mut Vec<u8>) {
        self.period.encode_key(out);
        encode_text(&self.pipeline, out);
        encode_text(&self.stage, out);
    }

    fn decode_key(bytes: &[u8]) -> Option<StageKey> {
        let (period, rest) = bytes.split_at_checked(PeriodKey::WIDTH)?;
        let (pipeline, rest) = decode_text(rest)?;
        let (stage, rest) = decode_text(rest)?;
        rest.is_empty().then_some(StageKey {
            period: PeriodKey::decode_key(period)?,
            pipeline,
            stage,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crm_projector::ranked::Entry;

    use crm_proj_testkit::key_order_holds as order_holds;

    fn period() -> impl Strategy<Value = PeriodKey> {
        prop_oneof![
            Just(PeriodKey(None)),
            (-3000i32..3000, 1u8..=12)
                .prop_map(|(year, month)| PeriodKey(Some(Month { year, month }))),
        ]
    }

    fn stage_key() -> impl Strategy<Value = StageKey> {
        (period(), "[ab\u{0}\u{1}é]{0,3}", "[ab\u{0}\u{1}é]{0,3}").prop_map(
            |(period, pipeline, stage)| StageKey {
                period,
                pipeline,
                stage,
            },
        )
    }

    proptest! {
        #[test]
        fn key_bytes_sort_like_keys(
            p1 in period(), p2 in period(),
            s1 in stage_key(), s2 in stage_key(),
            v1 in prop_oneof![0u64..3, any::<u64>()], v2 in prop_oneof![0u64..3, any::<u64>()],
        ) {
            order_holds(&p1, &p2)?;
            order_holds(&s1, &s2)?;
            order_holds(
                &Entry { scope: s1.clone(), value: v1 },
                &Entry { scope: s2.clone(), value: v2 },
            )?;
            order_holds(&(p1, s1.pipeline.clone()), &(p2, s2.pipeline.clone()))?;
        }
    }

    #[test]
    fn damaged_keys_do_not_decode() {
        assert_eq!(PeriodKey::decode_key(&[0, 0, 0, 0, 0, 1]), None);
        assert_eq!(PeriodKey::decode_key(&[2, 0, 0, 0, 0, 1]), None);
        let mut key = Vec::new();
        StageKey {
            period: PeriodKey(None),
            pipeline: "a".into(),
            stage: "b".into(),
        }
        .encode_key(&mut key);
        assert!(StageKey::decode_key(&key).is_some());
        assert_eq!(StageKey::decode_key(&key[..key.len() - 1]), None);
        assert_eq!(StageKey::decode_key(&[key.as_slice(), &[7]].concat()), None);
        // `a`, then `0 7`: neither an escaped `0` nor the end.
        let mut bad_escape = key.clone();
        bad_escape.insert(8, 7);
        assert_eq!(StageKey::decode_key(&bad_escape), None);
    }
}
