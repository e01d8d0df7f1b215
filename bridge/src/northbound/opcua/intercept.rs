//! The core node manager (namespace 0) with the condition methods taken out of its hands.
//!
//! Clients call Acknowledge, AddComment, Enable, Disable and ConditionRefresh with the method
//! ids of the standard types (`i=9111` on a condition of ours, `i=3875` on the Server...), and
//! async-opcua routes a call to the node manager that owns the *method*: the core one, which
//! knows nothing of our conditions. This wrapper is that node manager: it hands those calls
//! to [`Conditions`] and everything else, unchanged, to the core.

use super::conditions::Conditions;
use async_trait::async_trait;
use opcua::nodes::DefaultTypeTree;
use opcua::nodes::{EventNotifier, NodeType};
use opcua::server::diagnostics::NamespaceMetadata;
use opcua::server::node_manager::memory::{CoreNodeManager, CoreNodeManagerBuilder, InMemoryNodeManagerBuilder};
use opcua::server::node_manager::{
    AddNodeItem, AddReferenceItem, BrowseNode, BrowsePathItem, DeleteNodeItem, DeleteReferenceItem, DynNodeManager,
    ExternalReferenceRequest, HistoryNode, HistoryUpdateNode, MethodCall, MonitoredItemRef, MonitoredItemUpdateRef,
    NodeManager, NodeManagerBuilder, QueryRequest, ReadNode, RegisterNodeItem, RequestContext, ServerContext,
    WriteNode,
};
use opcua::server::CreateMonitoredItem;
use opcua::types::{
    ExpandedNodeId, MonitoringMode, NodeId, ObjectId, ReadAnnotationDataDetails, ReadAtTimeDetails, ReadEventDetails,
    ReadProcessedDetails, ReadRawModifiedDetails, StatusCode, TimestampsToReturn,
};
use std::sync::{Arc, OnceLock};

/// Set once the address space is built; until then condition calls fail as unknown methods.
pub type ConditionsSlot = Arc<OnceLock<Arc<Conditions>>>;

/// Builds the core node manager inside the wrapper.
pub fn core_with_conditions(slot: ConditionsSlot) -> impl NodeManagerBuilder {
    move |context: ServerContext| {
        let core = Box::new(InMemoryNodeManagerBuilder::new(CoreNodeManagerBuilder)).build(context);
        CoreWithConditions { core, slot }
    }
}

pub struct CoreWithConditions {
    core: Arc<DynNodeManager>,
    slot: ConditionsSlot,
}

#[async_trait]
impl NodeManager for CoreWithConditions {
    fn owns_node(&self, id: &NodeId) -> bool {
        self.core.owns_node(id)
    }

    fn name(&self) -> &str {
        self.core.name()
    }

    /// HistoryReadEvents on the Server goes to the node manager that says it owns them: this
    /// one, once the conditions are in place (their history is the alarm journal).
    fn owns_server_events(&self) -> bool {
        self.slot.get().is_some() || self.core.owns_server_events()
    }

    fn handle_new_node(&self, parent_id: &ExpandedNodeId) -> bool {
        self.core.handle_new_node(parent_id)
    }

    fn namespaces_for_user(&self, context: &RequestContext) -> Vec<NamespaceMetadata> {
        self.core.namespaces_for_user(context)
    }

    async fn init(&self, type_tree: &mut DefaultTypeTree, context: ServerContext) {
        self.core.init(type_tree, context).await;
        super::conditions::register_condition_id(type_tree);
        // The Server's event history is the alarm journal: say so in its EventNotifier.
        if let Ok(core) = self.core.clone().into_any_arc().downcast::<CoreNodeManager>() {
            let mut space = core.address_space().write();
            if let Some(NodeType::Object(server)) = space.find_mut(&NodeId::from(ObjectId::Server)) {
                server.set_event_notifier(server.event_notifier() | EventNotifier::HISTORY_READ);
            }
        }
    }

    async fn resolve_external_references(&self, context: &RequestContext, items: &mut [&mut ExternalReferenceRequest]) {
        self.core.resolve_external_references(context, items).await
    }

    async fn read(
        &self,
        context: &RequestContext,
        max_age: f64,
        timestamps_to_return: TimestampsToReturn,
        nodes_to_read: &mut [&mut ReadNode],
    ) -> Result<(), StatusCode> {
        self.core
            .read(context, max_age, timestamps_to_return, nodes_to_read)
            .await
    }

    async fn history_read_raw_modified(
        &self,
        context: &RequestContext,
        details: &ReadRawModifiedDetails,
        nodes: &mut [&mut HistoryNode],
        timestamps_to_return: TimestampsToReturn,
    ) -> Result<(), StatusCode> {
        self.core
            .history_read_raw_modified(context, details, nodes, timestamps_to_return)
            .await
    }

    async fn history_read_processed(
        &self,
        context: &RequestContext,
        details: &ReadProcessedDetails,
        nodes: &mut [&mut HistoryNode],
        timestamps_to_return: TimestampsToReturn,
    ) -> Result<(), StatusCode> {
        self.core
            .history_read_processed(context, details, nodes, timestamps_to_return)
            .await
    }

    async fn history_read_at_time(
        &self,
        context: &RequestContext,
        details: &ReadAtTimeDetails,
        nodes: &mut [&mut HistoryNode],
        timestamps_to_return: TimestampsToReturn,
    ) -> Result<(), StatusCode> {
        self.core
            .history_read_at_time(context, details, nodes, timestamps_to_return)
            .await
    }

    async fn history_read_events(
        &self,
        context: &RequestContext,
        details: &ReadEventDetails,
        nodes: &mut [&mut HistoryNode],
        timestamps_to_return: TimestampsToReturn,
    ) -> Result<(), StatusCode> {
        let server = NodeId::from(ObjectId::Server);
        let (ours, theirs): (Vec<&mut &mut HistoryNode>, Vec<&mut &mut HistoryNode>) = nodes
            .iter_mut()
            .partition(|n| self.slot.get().is_some() && *n.node_id() == server);
        if let Some(conditions) = self.slot.get() {
            for node in ours {
                conditions.history_events(context, details, node).await;
            }
        }
        let mut theirs: Vec<&mut HistoryNode> = theirs.into_iter().map(|n| &mut **n).collect();
        if theirs.is_empty() {
            return Ok(());
        }
        self.core
            .history_read_events(context, details, &mut theirs, timestamps_to_return)
            .await
    }

    async fn history_read_annotations(
        &self,
        context: &RequestContext,
        details: &ReadAnnotationDataDetails,
        nodes: &mut [&mut HistoryNode],
        timestamps_to_return: TimestampsToReturn,
    ) -> Result<(), StatusCode> {
        self.core
            .history_read_annotations(context, details, nodes, timestamps_to_return)
            .await
    }

    async fn write(&self, context: &RequestContext, nodes_to_write: &mut [&mut WriteNode]) -> Result<(), StatusCode> {
        self.core.write(context, nodes_to_write).await
    }

    async fn history_update(
        &self,
        context: &RequestContext,
        nodes: &mut [&mut HistoryUpdateNode],
    ) -> Result<(), StatusCode> {
        self.core.history_update(context, nodes).await
    }

    async fn browse(&self, context: &RequestContext, nodes_to_browse: &mut [BrowseNode]) -> Result<(), StatusCode> {
        self.core.browse(context, nodes_to_browse).await
    }

    async fn translate_browse_paths_to_node_ids(
        &self,
        context: &RequestContext,
        nodes: &mut [&mut BrowsePathItem],
    ) -> Result<(), StatusCode> {
        self.core.translate_browse_paths_to_node_ids(context, nodes).await
    }

    async fn register_nodes(
        &self,
        context: &RequestContext,
        nodes: &mut [&mut RegisterNodeItem],
    ) -> Result<(), StatusCode> {
        self.core.register_nodes(context, nodes).await
    }

    async fn unregister_nodes(&self, context: &RequestContext, nodes: &[&NodeId]) -> Result<(), StatusCode> {
        self.core.unregister_nodes(context, nodes).await
    }

    async fn create_monitored_items(
        &self,
        context: &RequestContext,
        items: &mut [&mut CreateMonitoredItem],
    ) -> Result<(), StatusCode> {
        self.core.create_monitored_items(context, items).await
    }

    async fn modify_monitored_items(&self, context: &RequestContext, items: &[&MonitoredItemUpdateRef]) {
        self.core.modify_monitored_items(context, items).await
    }

    async fn set_monitoring_mode(&self, context: &RequestContext, mode: MonitoringMode, items: &[&MonitoredItemRef]) {
        self.core.set_monitoring_mode(context, mode, items).await
    }

    async fn delete_monitored_items(&self, context: &RequestContext, items: &[&MonitoredItemRef]) {
        self.core.delete_monitored_items(context, items).await
    }

    async fn query(&self, context: &RequestContext, request: &mut QueryRequest) -> Result<(), StatusCode> {
        self.core.query(context, request).await
    }

    async fn call(&self, context: &RequestContext, methods_to_call: &mut [&mut MethodCall]) -> Result<(), StatusCode> {
        let (ours, theirs): (Vec<&mut &mut MethodCall>, Vec<&mut &mut MethodCall>) = methods_to_call
            .iter_mut()
            .partition(|c| self.slot.get().is_some() && Conditions::handles(c.method_id()));
        if let Some(conditions) = self.slot.get() {
            for call in ours {
                conditions.call(context, call).await;
            }
        }
        let mut theirs: Vec<&mut MethodCall> = theirs.into_iter().map(|c| &mut **c).collect();
        if theirs.is_empty() {
            return Ok(());
        }
        self.core.call(context, &mut theirs).await
    }

    async fn add_nodes(
        &self,
        context: &RequestContext,
        nodes_to_add: &mut [&mut AddNodeItem],
    ) -> Result<(), StatusCode> {
        self.core.add_nodes(context, nodes_to_add).await
    }

    async fn add_references(
        &self,
        context: &RequestContext,
        references_to_add: &mut [&mut AddReferenceItem],
    ) -> Result<(), StatusCode> {
        self.core.add_references(context, references_to_add).await
    }

    async fn delete_nodes(
        &self,
        context: &RequestContext,
        nodes_to_delete: &mut [&mut DeleteNodeItem],
    ) -> Result<(), StatusCode> {
        self.core.delete_nodes(context, nodes_to_delete).await
    }

    async fn delete_node_references(&self, context: &RequestContext, to_delete: &[&DeleteNodeItem]) {
        self.core.delete_node_references(context, to_delete).await
    }

    async fn delete_references(
        &self,
        context: &RequestContext,
        references_to_delete: &mut [&mut DeleteReferenceItem],
    ) -> Result<(), StatusCode> {
        self.core.delete_references(context, references_to_delete).await
    }
}
