//! The point variables and their properties, served by a node manager of our own that makes
//! each node when a request names it, from the profile and the store (`space::describe_point`).
//!
//! async-opcua's in-memory address space keeps every node with two sets of references (by
//! source and by target) holding copies of string NodeIds: at 100,000 points that took some
//! 600 MiB. Here a point costs an entry in its folder's list. The folders, device properties,
//! methods and conditions around the points stay in the in-memory space (the `busbar` node
//! manager); this one adds the references that cross between the two: folder -Organizes->
//! point, device -HasEventSource-> point with an alarm, and their inverses. Registered before
//! the in-memory manager, it answers every service for the nodes it owns.

use super::history::PointHistory;
use super::space::{self, Class, NodeDesc, PropValue, VarType};
use super::{as_f64, data_value, eu_information, status_of_outcome};
use crate::acquisition::Acquisition;
use crate::config::Config;
use crate::store::{PointIdx, Store};
use async_trait::async_trait;
use opcua::nodes::{AccessLevel, DefaultTypeTree, NodeType, VariableBuilder};
use opcua::server::address_space::{read_node_value, validate_node_read, validate_node_write};
use opcua::server::diagnostics::NamespaceMetadata;
use opcua::server::node_manager::{
    impl_translate_browse_paths_using_browse, AddReferenceResult, BrowseNode, BrowsePathItem, ExternalReferenceRequest,
    HistoryNode, NodeManager, NodeMetadata, ReadNode, RequestContext, ServerContext, WriteNode,
};
use opcua::server::CreateMonitoredItem;
use opcua::types::{
    AttributeId, DataTypeId, EnumValueType, ExpandedNodeId, ExtensionObject, Identifier, LocalizedText, NodeClass,
    NodeId, ObjectTypeId, QualifiedName, Range, ReadProcessedDetails, ReadRawModifiedDetails, ReferenceDescription,
    ReferenceTypeId, StatusCode, TimestampsToReturn, UAString, VariableTypeId, Variant, VariantScalarTypeId,
};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock};

/// A node of ours: a point's variable, or one of its properties (by name).
enum Owned<'a> {
    Point(PointIdx),
    Property(PointIdx, &'a str),
}

/// References left over when a browse result was full.
struct Rest(VecDeque<ReferenceDescription>);

pub struct PointNodes {
    ns: u16,
    config: Config,
    store: Arc<Store>,
    acq: Acquisition,
    history: PointHistory,
    /// The points of each folder (a device or a block folder), in address-space order.
    children: HashMap<String, Vec<PointIdx>>,
    /// Whether a point is served (acquired, with a node), by point index.
    served: Vec<bool>,
    /// The points with alarms, by device (HasEventSource), once the conditions are placed.
    sources: OnceLock<HashMap<String, Vec<PointIdx>>>,
}

impl PointNodes {
    /// The node manager for the points of `config`, in the Busbar namespace (registered here
    /// if the in-memory manager has not done so yet: the index is the same either way).
    pub fn builder(
        config: Config,
        store: Arc<Store>,
        acq: Acquisition,
        history: PointHistory,
    ) -> impl FnOnce(ServerContext) -> PointNodes {
        move |context: ServerContext| {
            let ns = context
                .type_tree
                .write()
                .namespaces_mut()
                .add_namespace(super::NAMESPACE_URI);
            let mut children: HashMap<String, Vec<PointIdx>> = HashMap::new();
            let mut served = vec![false; store.len()];
            for (d, dev) in config.devices.iter().enumerate() {
                for &k in &dev.acquired {
                    let (Some(p), Some(point)) = (store.point_of(d, k), dev.profile.points.get(k)) else {
                        continue;
                    };
                    if store.meta(p).is_none() {
                        continue;
                    }
                    children.entry(space::parent_of(dev, point)).or_default().push(p);
                    if let Some(s) = served.get_mut(p as usize) {
                        *s = true;
                    }
                }
            }
            PointNodes {
                ns,
                config,
                store,
                acq,
                history,
                children,
                served,
                sources: OnceLock::new(),
            }
        }
    }

    /// The node of every served point.
    pub fn nodes(&self) -> HashMap<PointIdx, NodeId> {
        (0..self.served.len() as PointIdx)
            .filter(|&p| self.is_served(p))
            .filter_map(|p| Some((p, NodeId::new(self.ns, self.store.meta(p)?.id.as_str()))))
            .collect()
    }

    /// Points with alarms, by device name: browsed as HasEventSource from their device.
    pub fn set_event_sources(&self, sources: HashMap<String, Vec<PointIdx>>) {
        let _ = self.sources.set(sources);
    }

    fn is_served(&self, p: PointIdx) -> bool {
        self.served.get(p as usize).copied().unwrap_or(false)
    }

    fn owned<'a>(&self, id: &'a NodeId) -> Option<Owned<'a>> {
        if id.namespace != self.ns {
            return None;
        }
        let Identifier::String(s) = &id.identifier else {
            return None;
        };
        let s = s.as_ref();
        if let Some(p) = self.store.find(s).filter(|&p| self.is_served(p)) {
            return Some(Owned::Point(p));
        }
        let (point, name) = s.rsplit_once('#')?;
        let p = self.store.find(point).filter(|&p| self.is_served(p))?;
        // Only the properties the point's kind has.
        self.describe(p)
            .iter()
            .skip(1)
            .any(|n| n.browse == name)
            .then_some(Owned::Property(p, name))
    }

    fn describe(&self, p: PointIdx) -> Vec<NodeDesc> {
        space::describe_point(&self.config, &self.store, p)
    }

    /// The description of an owned node.
    fn desc(&self, id: &NodeId) -> Option<NodeDesc> {
        match self.owned(id)? {
            Owned::Point(p) => self.describe(p).into_iter().next(),
            Owned::Property(p, name) => self.describe(p).into_iter().skip(1).find(|n| n.browse == name),
        }
    }

    /// An owned node, made for this request, with the point's current value.
    fn node(&self, id: &NodeId) -> Option<NodeType> {
        let desc = self.desc(id)?;
        let mut var = variable(&desc, self.ns)?.build();
        if let Class::Variable { point, .. } = desc.class {
            if let Some(sample) = self.store.samples().get(point as usize) {
                var.set_data_value(data_value(sample));
            }
        }
        Some(NodeType::Variable(Box::new(var)))
    }

    fn meta(&self, desc: &NodeDesc) -> NodeMetadata {
        let (class, type_def) = match &desc.class {
            Class::Folder => (NodeClass::Object, NodeId::from(ObjectTypeId::FolderType)),
            Class::Variable { var_type, .. } => (NodeClass::Variable, NodeId::from(var_type_id(*var_type))),
            Class::Property { .. } => (NodeClass::Variable, VariableTypeId::PropertyType.into()),
            Class::Method { .. } => (NodeClass::Method, NodeId::null()),
        };
        NodeMetadata {
            node_id: NodeId::new(self.ns, desc.id.as_str()).into(),
            type_definition: type_def.into(),
            browse_name: browse_name(desc, self.ns),
            display_name: LocalizedText::from(desc.display.as_str()),
            node_class: class,
        }
    }

    /// The folder a point hangs in, as reference metadata.
    fn folder_meta(&self, id: &str) -> Option<NodeMetadata> {
        space::device_folder(&self.config, &self.store, id).map(|f| self.meta(&f))
    }

    /// Every reference of ours from `id`, either direction: for our nodes all of theirs, for
    /// a folder of the in-memory space the ones that reach our nodes.
    fn references(&self, id: &NodeId) -> Vec<ReferenceDescription> {
        let mut out = Vec::new();
        let to = |meta: NodeMetadata, forward: bool, kind: ReferenceTypeId| meta.into_ref_desc(forward, kind);
        match self.owned(id) {
            Some(Owned::Point(p)) => {
                let descs = self.describe(p);
                let Some(var) = descs.first() else { return out };
                if let space::Parent::Node(parent) = &var.parent {
                    if let Some(folder) = self.folder_meta(parent) {
                        out.push(to(folder, false, ReferenceTypeId::Organizes));
                    }
                }
                if let Class::Variable { var_type, .. } = var.class {
                    out.push(type_ref(var_type_id(var_type)));
                }
                for prop in &descs[1..] {
                    out.push(to(self.meta(prop), true, ReferenceTypeId::HasProperty));
                }
                let device = self
                    .store
                    .meta(p)
                    .and_then(|m| self.config.devices.get(m.device))
                    .map(|d| d.name.as_str());
                if let (Some(device), Some(sources)) = (device, self.sources.get()) {
                    if sources.get(device).is_some_and(|s| s.contains(&p)) {
                        if let Some(folder) = self.folder_meta(device) {
                            out.push(to(folder, false, ReferenceTypeId::HasEventSource));
                        }
                    }
                }
            }
            Some(Owned::Property(p, _)) => {
                if let Some(var) = self.describe(p).first() {
                    out.push(to(self.meta(var), false, ReferenceTypeId::HasProperty));
                }
                out.push(type_ref(VariableTypeId::PropertyType));
            }
            None => {
                let Some(folder) = self.foreign_folder(id) else {
                    return out;
                };
                let points = |list: Option<&Vec<PointIdx>>| list.cloned().unwrap_or_default();
                for p in points(self.children.get(folder)) {
                    if let Some(var) = self.describe(p).first() {
                        out.push(to(self.meta(var), true, ReferenceTypeId::Organizes));
                    }
                }
                for p in points(self.sources.get().and_then(|s| s.get(folder))) {
                    if let Some(var) = self.describe(p).first() {
                        out.push(to(self.meta(var), true, ReferenceTypeId::HasEventSource));
                    }
                }
            }
        }
        out
    }

    /// `id` as the string id of a folder of the in-memory space, in our namespace.
    fn foreign_folder<'a>(&self, id: &'a NodeId) -> Option<&'a str> {
        if id.namespace != self.ns {
            return None;
        }
        match &id.identifier {
            Identifier::String(s) => Some(s.as_ref()),
            _ => None,
        }
    }
}

/// A point or property variable as async-opcua's node, without references; None for other
/// classes or an invalid description (so that building it cannot fail).
pub(super) fn variable(n: &NodeDesc, ns: u16) -> Option<VariableBuilder> {
    let id = NodeId::new(ns, n.id.as_str());
    let builder = match &n.class {
        Class::Variable { text, writable, .. } => {
            let (data_type, initial) = if *text {
                (DataTypeId::String, Variant::from(UAString::null()))
            } else {
                (DataTypeId::Double, Variant::Double(0.0))
            };
            let mut level = AccessLevel::CURRENT_READ | AccessLevel::HISTORY_READ;
            if *writable {
                level |= AccessLevel::CURRENT_WRITE;
            }
            VariableBuilder::new(&id, browse_name(n, ns), n.display.as_str())
                .data_type(data_type)
                .value(initial)
                .description(n.description.as_str())
                .historizing(true)
                .access_level(level)
                .user_access_level(level)
        }
        Class::Property { value, .. } => {
            let (data_type, value) = property_value(value);
            VariableBuilder::new(&id, browse_name(n, ns), n.display.as_str())
                .data_type(data_type)
                .value(value)
        }
        Class::Folder | Class::Method { .. } => return None,
    };
    builder.is_valid().then_some(builder)
}

/// A property's data type and value.
pub(super) fn property_value(value: &PropValue) -> (DataTypeId, Variant) {
    match value {
        PropValue::Text(t) => (DataTypeId::String, Variant::from(UAString::from(t.as_str()))),
        PropValue::Localized(t) => (
            DataTypeId::LocalizedText,
            Variant::from(LocalizedText::new("en", t.as_str())),
        ),
        PropValue::Units(u) => (
            DataTypeId::EUInformation,
            Variant::from(ExtensionObject::from_message(eu_information(*u))),
        ),
        PropValue::Range(low, high) => (
            DataTypeId::Range,
            Variant::from(ExtensionObject::from_message(Range { low: *low, high: *high })),
        ),
        PropValue::EnumValues(values) => {
            let items: Vec<ExtensionObject> = values
                .iter()
                .map(|(value, label)| {
                    ExtensionObject::from_message(EnumValueType {
                        value: *value,
                        display_name: LocalizedText::new("en", label.as_str()),
                        description: LocalizedText::null(),
                    })
                })
                .collect();
            // An array of one scalar type (a Vec<Variant> of other types would not encode).
            (
                DataTypeId::EnumValueType,
                Variant::from((VariantScalarTypeId::ExtensionObject, items)),
            )
        }
    }
}

/// Standard properties (EngineeringUnits...) have namespace-0 browse names.
pub(super) fn browse_name(n: &NodeDesc, ns: u16) -> QualifiedName {
    match n.class {
        Class::Property { standard: true, .. } => QualifiedName::new(0, n.browse.as_str()),
        _ => QualifiedName::new(ns, n.browse.as_str()),
    }
}

pub(super) fn var_type_id(t: VarType) -> VariableTypeId {
    match t {
        VarType::BaseData => VariableTypeId::BaseDataVariableType,
        VarType::Analog => VariableTypeId::AnalogItemType,
        VarType::TwoState => VariableTypeId::TwoStateDiscreteType,
        VarType::MultiStateValue => VariableTypeId::MultiStateValueDiscreteType,
    }
}

/// HasTypeDefinition to one of the standard variable types.
fn type_ref(t: VariableTypeId) -> ReferenceDescription {
    let name = match t {
        VariableTypeId::AnalogItemType => "AnalogItemType",
        VariableTypeId::TwoStateDiscreteType => "TwoStateDiscreteType",
        VariableTypeId::MultiStateValueDiscreteType => "MultiStateValueDiscreteType",
        VariableTypeId::PropertyType => "PropertyType",
        _ => "BaseDataVariableType",
    };
    NodeMetadata {
        node_id: ExpandedNodeId::from(NodeId::from(t)),
        type_definition: ExpandedNodeId::null(),
        browse_name: QualifiedName::new(0, name),
        display_name: LocalizedText::from(name),
        node_class: NodeClass::VariableType,
    }
    .into_ref_desc(true, ReferenceTypeId::HasTypeDefinition)
}

#[async_trait]
impl NodeManager for PointNodes {
    fn owns_node(&self, id: &NodeId) -> bool {
        self.owned(id).is_some()
    }

    fn name(&self) -> &str {
        "busbar-points"
    }

    /// The namespace is listed by the in-memory manager, which shares it.
    fn namespaces_for_user(&self, _context: &RequestContext) -> Vec<NamespaceMetadata> {
        Vec::new()
    }

    async fn init(&self, _type_tree: &mut DefaultTypeTree, _context: ServerContext) {}

    async fn resolve_external_references(
        &self,
        _context: &RequestContext,
        items: &mut [&mut ExternalReferenceRequest],
    ) {
        for item in items {
            if let Some(desc) = self.desc(item.node_id()) {
                let meta = self.meta(&desc);
                item.set(meta);
            }
        }
    }

    async fn read(
        &self,
        context: &RequestContext,
        max_age: f64,
        timestamps_to_return: TimestampsToReturn,
        nodes_to_read: &mut [&mut ReadNode],
    ) -> Result<(), StatusCode> {
        for read in nodes_to_read {
            let Some(node) = self.node(&read.node().node_id) else {
                read.set_error(StatusCode::BadNodeIdUnknown);
                continue;
            };
            match validate_node_read(&node, context, read.node()) {
                Ok(()) => {
                    let value = read_node_value(&node, context, read.node(), max_age, timestamps_to_return);
                    read.set_result(value);
                }
                Err(e) => read.set_error(e),
            }
        }
        Ok(())
    }

    /// Writes to a point's value go to its device; the new value comes back through the store.
    async fn write(&self, context: &RequestContext, nodes_to_write: &mut [&mut WriteNode]) -> Result<(), StatusCode> {
        let mut to_device = Vec::new();
        {
            let type_tree = context.get_type_tree_for_user();
            for (i, write) in nodes_to_write.iter_mut().enumerate() {
                let id = &write.value().node_id;
                let Some(node) = self.node(id) else {
                    write.set_status(StatusCode::BadNodeIdUnknown);
                    continue;
                };
                // Properties are constants of the profile.
                let Some(Owned::Point(p)) = self.owned(id) else {
                    write.set_status(StatusCode::BadNotWritable);
                    continue;
                };
                if let Err(e) = validate_node_write(&node, context, write.value(), type_tree.get()) {
                    write.set_status(e);
                    continue;
                }
                if write.value().attribute_id != AttributeId::Value {
                    write.set_status(StatusCode::BadNotWritable);
                    continue;
                }
                match write.value().value.value.as_ref().and_then(as_f64) {
                    Some(v) => to_device.push((i, p, v)),
                    None => write.set_status(StatusCode::BadTypeMismatch),
                }
            }
        }
        for (i, p, v) in to_device {
            let status = status_of_outcome(&self.acq.write(p, v).await);
            if let Some(write) = nodes_to_write.get_mut(i) {
                write.set_status(status);
            }
        }
        Ok(())
    }

    async fn history_read_raw_modified(
        &self,
        _context: &RequestContext,
        details: &ReadRawModifiedDetails,
        nodes: &mut [&mut HistoryNode],
        _timestamps_to_return: TimestampsToReturn,
    ) -> Result<(), StatusCode> {
        let mut points = self.historizing(nodes);
        self.history.read_raw(details, &mut points).await
    }

    async fn history_read_processed(
        &self,
        _context: &RequestContext,
        details: &ReadProcessedDetails,
        nodes: &mut [&mut HistoryNode],
        _timestamps_to_return: TimestampsToReturn,
    ) -> Result<(), StatusCode> {
        let mut points = self.historizing(nodes);
        self.history.read_processed(details, &mut points).await
    }

    async fn browse(&self, context: &RequestContext, nodes_to_browse: &mut [BrowseNode]) -> Result<(), StatusCode> {
        let type_tree = context.get_type_tree_for_user();
        for node in nodes_to_browse.iter_mut() {
            if let Some(mut rest) = node.take_continuation_point::<Rest>() {
                while node.remaining() > 0 {
                    let Some(r) = rest.0.pop_front() else { break };
                    node.add_unchecked(r);
                }
                if !rest.0.is_empty() {
                    node.set_next_continuation_point(rest);
                }
                continue;
            }
            if self.owns_node(node.node_id()) {
                node.set_status(StatusCode::Good);
            }
            let mut rest = VecDeque::new();
            for r in self.references(node.node_id()) {
                // `add` filters by reference type and node class, not by direction.
                if !(if r.is_forward {
                    node.allows_forward()
                } else {
                    node.allows_inverse()
                }) {
                    continue;
                }
                if let AddReferenceResult::Full(r) = node.add(type_tree.get(), r) {
                    rest.push_back(r);
                }
            }
            if !rest.is_empty() {
                node.set_next_continuation_point(Box::new(Rest(rest)));
            }
        }
        Ok(())
    }

    async fn translate_browse_paths_to_node_ids(
        &self,
        context: &RequestContext,
        nodes: &mut [&mut BrowsePathItem],
    ) -> Result<(), StatusCode> {
        impl_translate_browse_paths_using_browse(self, context, nodes).await
    }

    async fn create_monitored_items(
        &self,
        context: &RequestContext,
        items: &mut [&mut CreateMonitoredItem],
    ) -> Result<(), StatusCode> {
        for item in items {
            let Some(node) = self.node(&item.item_to_monitor().node_id) else {
                item.set_status(StatusCode::BadNodeIdUnknown);
                continue;
            };
            if let Err(e) = validate_node_read(&node, context, item.item_to_monitor()) {
                item.set_status(e);
                continue;
            }
            // Variables are no event notifiers.
            if item.item_to_monitor().attribute_id == AttributeId::EventNotifier {
                item.set_status(StatusCode::BadAttributeIdInvalid);
                continue;
            }
            let value = read_node_value(&node, context, item.item_to_monitor(), 0.0, item.timestamps_to_return());
            if value.status() != StatusCode::BadAttributeIdInvalid {
                item.set_initial_value(value);
            }
            item.set_status(StatusCode::Good);
        }
        Ok(())
    }
}

impl PointNodes {
    /// The nodes of a HistoryRead that have history (point values); properties are told so.
    fn historizing<'a, 'b>(&self, nodes: &'b mut [&'a mut HistoryNode]) -> Vec<&'b mut &'a mut HistoryNode> {
        nodes
            .iter_mut()
            .filter_map(|n| match self.owned(n.node_id()) {
                Some(Owned::Point(_)) => Some(n),
                _ => {
                    n.set_status(StatusCode::BadHistoryOperationUnsupported);
                    None
                }
            })
            .collect()
    }
}
