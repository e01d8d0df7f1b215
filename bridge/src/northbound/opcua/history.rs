//! HistoryRead of point values for the OPC UA server: from the InfluxDB history when the sink
//! is configured (`influx_history`), else from a bounded in-memory ring of samples per point,
//! fed by the same store notifications as the live values; raw reads with continuation points,
//! and processed ones (`aggregates`). `points::PointNodes` routes the reads here.

use super::aggregates::{compute, Aggregate, Raw};
use super::influx_history::{InfluxHistory, Window};
use opcua::server::node_manager::HistoryNode;
use opcua::server::ContinuationPoint;
use opcua::types::{DataValue, HistoryData, NodeId, ReadProcessedDetails, ReadRawModifiedDetails, StatusCode};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};

/// Values one raw HistoryRead answers per node at most (the rest through continuation points).
const RAW_MAX: usize = 10_000;

/// Where a raw read from InfluxDB left off: the source time of the last value returned.
struct RawCursor {
    last_ms: i64,
}

/// Set once the address space is built, when the InfluxDB history is configured (1.x API).
pub type InfluxSlot = Arc<OnceLock<InfluxHistory>>;

/// Per-node rings of past values.
pub struct History {
    capacity: usize,
    rings: Mutex<HashMap<NodeId, VecDeque<DataValue>>>,
}

impl History {
    pub fn new(capacity: usize) -> Arc<History> {
        Arc::new(History {
            capacity: capacity.max(1),
            rings: Mutex::new(HashMap::new()),
        })
    }

    /// Record values (ignoring repeats of the same source time).
    pub fn record(&self, values: &[(NodeId, DataValue)]) {
        let mut rings = self.rings.lock().unwrap_or_else(|p| p.into_inner());
        for (node, v) in values {
            let ring = rings.entry(node.clone()).or_default();
            if ring
                .back()
                .is_some_and(|last| last.source_timestamp == v.source_timestamp && last.status == v.status)
            {
                continue;
            }
            if ring.len() == self.capacity {
                ring.pop_front();
            }
            ring.push_back(v.clone());
        }
    }

    /// Values of `node` in a window (both bounds inclusive), with their source times (Unix ms).
    pub fn window(&self, node: &NodeId, w: &Window) -> Vec<(i64, DataValue)> {
        let rings = self.rings.lock().unwrap_or_else(|p| p.into_inner());
        let Some(ring) = rings.get(node) else { return Vec::new() };
        let mut out: Vec<(i64, DataValue)> = ring
            .iter()
            .filter_map(|v| Some((super::conditions::unix_ms_of(v.source_timestamp.as_ref()?)?, v)))
            .filter(|(ms, _)| w.from_ms.is_none_or(|f| *ms >= f) && w.to_ms.is_none_or(|t| *ms <= t))
            .map(|(ms, v)| (ms, v.clone()))
            .collect();
        if !w.forward {
            out.reverse();
        }
        out.truncate(w.limit);
        out
    }

    /// Values of `node` with a source time in [start, end] (either bound may be null), oldest
    /// first (newest first when start > end, as the spec says), at most `max` (0 = all).
    pub fn raw(&self, node: &NodeId, details: &ReadRawModifiedDetails) -> Vec<DataValue> {
        let rings = self.rings.lock().unwrap_or_else(|p| p.into_inner());
        let Some(ring) = rings.get(node) else { return Vec::new() };
        let (start, end) = (details.start_time.ticks(), details.end_time.ticks());
        let null = |t: i64| t == 0;
        let reverse = !null(start) && !null(end) && start > end;
        let (lo, hi) = if reverse { (end, start) } else { (start, end) };
        let mut out: Vec<DataValue> = ring
            .iter()
            .filter(|v| {
                let t = v.source_timestamp.map_or(0, |t| t.ticks());
                (null(lo) || t >= lo) && (null(hi) || t <= hi)
            })
            .cloned()
            .collect();
        if reverse || (null(start) && !null(end)) {
            out.reverse();
        }
        let max = details.num_values_per_node as usize;
        if max > 0 {
            out.truncate(max);
        }
        out
    }
}

/// HistoryRead of point values: from InfluxDB when it holds the point, else from the rings.
pub struct PointHistory {
    history: Arc<History>,
    influx: InfluxSlot,
}

/// Raw values one processed read may work through per node.
const PROCESSED_RAW_MAX: usize = 1_000_000;

impl PointHistory {
    pub fn new(history: Arc<History>, influx: InfluxSlot) -> PointHistory {
        PointHistory { history, influx }
    }

    /// Raw values of `node` in [from, to) (and, with `bounds`, the values bounding it, which
    /// only Interpolative needs), oldest first, from InfluxDB when it holds the node, else from
    /// the rings.
    async fn raw_for_aggregates(
        &self,
        node: &NodeId,
        from: i64,
        to: i64,
        bounds: bool,
    ) -> Result<Vec<Raw>, StatusCode> {
        let window = |from_ms, to_ms, forward, limit| Window {
            from_ms,
            to_ms,
            forward,
            limit,
        };
        let parts = [
            window(None, Some(from - 1), false, 1),
            window(Some(from), Some(to - 1), true, PROCESSED_RAW_MAX + 1),
            window(Some(to), None, true, 1),
        ];
        let mut out = Vec::new();
        for (i, w) in parts.iter().enumerate() {
            if i != 1 && !bounds {
                continue;
            }
            let mut rows = match self.influx.get().filter(|h| h.has(node)) {
                Some(influx) => influx.raw(node, w).await.map_err(|e| {
                    tracing::warn!(node = %node, "OPC UA HistoryRead (processed): {e}");
                    StatusCode::BadDataUnavailable
                })?,
                None => self.history.window(node, w),
            };
            if i == 1 && rows.len() > PROCESSED_RAW_MAX {
                return Err(StatusCode::BadTooManyOperations);
            }
            if !w.forward {
                rows.reverse();
            }
            out.extend(rows.iter().map(|(ms, v)| Raw::of(*ms, v)));
        }
        Ok(out)
    }

    /// A raw read of one node from InfluxDB, resuming after the continuation point if any.
    async fn raw_from_influx(
        &self,
        influx: &InfluxHistory,
        details: &ReadRawModifiedDetails,
        node: &mut HistoryNode,
    ) -> Result<(), StatusCode> {
        use super::conditions::unix_ms_of;
        let (start, end) = (unix_ms_of(&details.start_time), unix_ms_of(&details.end_time));
        let forward = match (start, end) {
            (Some(s), Some(e)) => s <= e,
            (None, Some(_)) => false,
            _ => true,
        };
        let (lo, hi) = match (start, end) {
            (Some(s), Some(e)) if s > e => (Some(e), Some(s)),
            (s, e) => (s, e),
        };
        let mut window = Window {
            from_ms: lo,
            to_ms: hi,
            forward,
            limit: 0,
        };
        if let Some(cp) = node.continuation_point() {
            let last = cp
                .get::<RawCursor>()
                .ok_or(StatusCode::BadContinuationPointInvalid)?
                .last_ms;
            if forward {
                window.from_ms = Some(last + 1);
            } else {
                window.to_ms = Some(last - 1);
            }
        }
        let max = match details.num_values_per_node {
            0 => RAW_MAX,
            n => (n as usize).min(RAW_MAX),
        };
        window.limit = max + 1;
        let mut rows = influx.raw(node.node_id(), &window).await.map_err(|e| {
            tracing::warn!(node = %node.node_id(), "OPC UA HistoryRead: {e}");
            StatusCode::BadDataUnavailable
        })?;
        let more = rows.len() > max;
        rows.truncate(max);
        if more {
            if let Some((last_ms, _)) = rows.last() {
                node.set_next_continuation_point(Some(ContinuationPoint::new(Box::new(RawCursor {
                    last_ms: *last_ms,
                }))));
            }
        }
        node.set_result(HistoryData {
            data_values: Some(rows.into_iter().map(|(_, v)| v).collect()),
        });
        Ok(())
    }
}

impl PointHistory {
    /// HistoryRead processed (Average, Minimum, Maximum, Count, Interpolative).
    pub async fn read_processed(
        &self,
        details: &ReadProcessedDetails,
        nodes: &mut [&mut &mut HistoryNode],
    ) -> Result<(), StatusCode> {
        use super::conditions::unix_ms_of;
        // One aggregate for every node of the request (the nodes reach us without their
        // position in it).
        let ids = details.aggregate_type.as_deref().unwrap_or(&[]);
        let Some(first) = ids.first() else {
            return Err(StatusCode::BadAggregateListMismatch);
        };
        if ids.iter().any(|id| id != first) {
            return Err(StatusCode::BadAggregateListMismatch);
        }
        let aggregate = Aggregate::of(first).ok_or(StatusCode::BadAggregateNotSupported)?;
        let (Some(start), Some(end)) = (unix_ms_of(&details.start_time), unix_ms_of(&details.end_time)) else {
            return Err(StatusCode::BadInvalidTimestampArgument);
        };
        let (lo, hi, backward) = if start <= end {
            (start, end, false)
        } else {
            (end, start, true)
        };
        let interval = details.processing_interval.max(0.0) as i64;
        for node in nodes.iter_mut() {
            let result = match self
                .raw_for_aggregates(node.node_id(), lo, hi, aggregate == Aggregate::Interpolative)
                .await
            {
                Ok(raw) => compute(aggregate, &raw, lo, hi, interval),
                Err(s) => Err(s),
            };
            match result {
                Ok(mut values) => {
                    if backward {
                        values.reverse();
                    }
                    node.set_result(HistoryData {
                        data_values: Some(values),
                    });
                    node.set_status(StatusCode::Good);
                }
                Err(s) => node.set_status(s),
            }
        }
        Ok(())
    }

    /// HistoryRead raw, with continuation points.
    pub async fn read_raw(
        &self,
        details: &ReadRawModifiedDetails,
        nodes: &mut [&mut &mut HistoryNode],
    ) -> Result<(), StatusCode> {
        if details.is_read_modified {
            return Err(StatusCode::BadHistoryOperationUnsupported);
        }
        for node in nodes.iter_mut() {
            if let Some(influx) = self.influx.get().filter(|i| i.has(node.node_id())) {
                let status = match self.raw_from_influx(influx, details, node).await {
                    Ok(()) => StatusCode::Good,
                    Err(s) => s,
                };
                node.set_status(status);
                continue;
            }
            let values = self.history.raw(node.node_id(), details);
            node.set_result(HistoryData {
                data_values: Some(values),
            });
            node.set_status(StatusCode::Good);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opcua::types::{DateTime, Variant};

    fn at(secs: i64) -> DataValue {
        let t = DateTime::from(opcua::types::date_time::DateTimeUtc::from(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64),
        ));
        DataValue {
            value: Some(Variant::Double(secs as f64)),
            source_timestamp: Some(t),
            ..Default::default()
        }
    }

    fn details(start: Option<&DataValue>, end: Option<&DataValue>, n: u32) -> ReadRawModifiedDetails {
        let t = |v: Option<&DataValue>| v.and_then(|v| v.source_timestamp).unwrap_or_else(DateTime::null);
        ReadRawModifiedDetails {
            is_read_modified: false,
            start_time: t(start),
            end_time: t(end),
            num_values_per_node: n,
            return_bounds: false,
        }
    }

    #[test]
    fn the_ring_is_bounded_ordered_and_filtered_by_time() {
        let h = History::new(5);
        let node = NodeId::new(2, "m/v1");
        let values: Vec<(NodeId, DataValue)> = (0..8).map(|s| (node.clone(), at(100 + s))).collect();
        h.record(&values);
        h.record(&values[7..]); // a repeat of the same sample is not stored twice
        let all = h.raw(&node, &details(Some(&at(0)), Some(&at(1000)), 0));
        let secs: Vec<f64> = all
            .iter()
            .filter_map(|v| match v.value {
                Some(Variant::Double(x)) => Some(x),
                _ => None,
            })
            .collect();
        assert_eq!(
            secs,
            vec![103.0, 104.0, 105.0, 106.0, 107.0],
            "the 5 newest, oldest first"
        );
        assert_eq!(h.raw(&node, &details(Some(&at(104)), Some(&at(105)), 0)).len(), 2);
        let newest_first = h.raw(&node, &details(Some(&at(1000)), Some(&at(0)), 2));
        assert_eq!(
            newest_first.first().and_then(|v| v.value.clone()),
            Some(Variant::Double(107.0))
        );
        assert_eq!(newest_first.len(), 2);
        assert!(h.raw(&NodeId::new(2, "other"), &details(None, None, 0)).is_empty());
    }
}
