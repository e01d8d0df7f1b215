//! HistoryRead for the OPC UA server: a bounded in-memory ring of samples per point, fed by the
//! same store notifications as the live values, served by HistoryRead (raw). The node manager is
//! async-opcua's simple one (callbacks for writes and methods) with history added on top.

use async_trait::async_trait;
use opcua::server::address_space::AddressSpace;
use opcua::server::diagnostics::NamespaceMetadata;
use opcua::server::node_manager::memory::{
    InMemoryNodeManagerImpl, InMemoryNodeManagerImplBuilder, SimpleNodeManagerBuilder, SimpleNodeManagerImpl,
};
use opcua::server::node_manager::{
    HistoryNode, MethodCall, MonitoredItemRef, MonitoredItemUpdateRef, ParsedReadValueId, RequestContext,
    ServerContext, WriteNode,
};
use opcua::server::CreateMonitoredItem;
use opcua::sync::RwLock;
use opcua::types::{
    DataValue, HistoryData, MonitoringMode, NodeId, ReadRawModifiedDetails, StatusCode, TimestampsToReturn,
};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

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

/// Builds [BusbarNodes].
pub struct BusbarNodesBuilder {
    pub namespace: NamespaceMetadata,
    pub history: Arc<History>,
}

impl InMemoryNodeManagerImplBuilder for BusbarNodesBuilder {
    type Impl = BusbarNodes;

    fn build(self, context: ServerContext, address_space: &mut AddressSpace) -> BusbarNodes {
        BusbarNodes {
            simple: SimpleNodeManagerBuilder::new(self.namespace, "busbar").build(context, address_space),
            history: self.history,
        }
    }
}

/// The simple node manager plus HistoryRead.
pub struct BusbarNodes {
    pub simple: SimpleNodeManagerImpl,
    history: Arc<History>,
}

#[async_trait]
impl InMemoryNodeManagerImpl for BusbarNodes {
    async fn init(&self, address_space: &mut AddressSpace, context: ServerContext) {
        self.simple.init(address_space, context).await
    }

    fn name(&self) -> &str {
        self.simple.name()
    }

    fn namespaces(&self) -> Vec<NamespaceMetadata> {
        self.simple.namespaces()
    }

    async fn read_values(
        &self,
        context: &RequestContext,
        address_space: &RwLock<AddressSpace>,
        nodes: &[&ParsedReadValueId],
        max_age: f64,
        timestamps_to_return: TimestampsToReturn,
    ) -> Vec<DataValue> {
        self.simple
            .read_values(context, address_space, nodes, max_age, timestamps_to_return)
            .await
    }

    async fn create_value_monitored_items(
        &self,
        context: &RequestContext,
        address_space: &RwLock<AddressSpace>,
        items: &mut [&mut &mut CreateMonitoredItem],
    ) {
        self.simple
            .create_value_monitored_items(context, address_space, items)
            .await
    }

    async fn set_monitoring_mode(&self, context: &RequestContext, mode: MonitoringMode, items: &[&MonitoredItemRef]) {
        self.simple.set_monitoring_mode(context, mode, items).await
    }

    async fn modify_monitored_items(&self, context: &RequestContext, items: &[&MonitoredItemUpdateRef]) {
        self.simple.modify_monitored_items(context, items).await
    }

    async fn delete_monitored_items(&self, context: &RequestContext, items: &[&MonitoredItemRef]) {
        self.simple.delete_monitored_items(context, items).await
    }

    async fn write(
        &self,
        context: &RequestContext,
        address_space: &RwLock<AddressSpace>,
        nodes_to_write: &mut [&mut WriteNode],
    ) -> Result<(), StatusCode> {
        self.simple.write(context, address_space, nodes_to_write).await
    }

    async fn call(
        &self,
        context: &RequestContext,
        address_space: &RwLock<AddressSpace>,
        methods_to_call: &mut [&mut &mut MethodCall],
    ) -> Result<(), StatusCode> {
        self.simple.call(context, address_space, methods_to_call).await
    }

    async fn history_read_raw_modified(
        &self,
        _context: &RequestContext,
        details: &ReadRawModifiedDetails,
        nodes: &mut [&mut &mut HistoryNode],
        _timestamps_to_return: TimestampsToReturn,
    ) -> Result<(), StatusCode> {
        if details.is_read_modified {
            return Err(StatusCode::BadHistoryOperationUnsupported);
        }
        for node in nodes.iter_mut() {
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
