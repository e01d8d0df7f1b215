//! The Busbar address space as data: the one description of every folder, variable, property
//! and method, which the OPC UA server inserts and `busbar export nodeset` writes as NodeSet2
//! XML.

use crate::config::{Config, Device};
use crate::store::{PointIdx, Store};
use busbar_core::profile::{Kind, Point};
use busbar_core::units::Unit;

/// Where a node hangs.
#[derive(Debug, Clone, PartialEq)]
pub enum Parent {
    /// The standard Objects folder (i=85).
    Objects,
    /// A Busbar node, by its string id.
    Node(String),
}

/// The value of a property.
#[derive(Debug, Clone, PartialEq)]
pub enum PropValue {
    Text(String),
    Localized(String),
    Units(Unit),
    Range(f64, f64),
    EnumValues(Vec<(i64, String)>),
}

/// The kind of a variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarType {
    BaseData,
    Analog,
    TwoState,
    MultiStateValue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Class {
    Folder,
    /// A point: a Double (or String for text points), historizing.
    Variable {
        var_type: VarType,
        text: bool,
        point: PointIdx,
        writable: bool,
    },
    /// A property; `standard` ones (EngineeringUnits...) have namespace-0 browse names.
    Property {
        value: PropValue,
        standard: bool,
    },
    /// A device command; `argument` = it takes one Double.
    Method {
        argument: bool,
    },
}

/// One node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeDesc {
    /// String identifier in the Busbar namespace.
    pub id: String,
    pub browse: String,
    pub display: String,
    pub description: String,
    pub parent: Parent,
    pub class: Class,
}

/// Every node of the site's address space, parents before children.
pub fn describe(config: &Config, store: &Store) -> Vec<NodeDesc> {
    describe_nodes(config, store, true)
}

/// The nodes around the points: folders (block folders included), device properties and
/// methods; the points and their properties are served by `points::PointNodes` from
/// [`describe_point`].
pub fn describe_frame(config: &Config, store: &Store) -> Vec<NodeDesc> {
    describe_nodes(config, store, false)
}

fn folder(id: &str, browse: &str, display: &str, parent: Parent) -> NodeDesc {
    NodeDesc {
        id: id.to_string(),
        browse: browse.to_string(),
        display: display.to_string(),
        description: String::new(),
        parent,
        class: Class::Folder,
    }
}

fn property(owner: &str, name: &str, value: PropValue, standard: bool) -> NodeDesc {
    NodeDesc {
        id: format!("{owner}#{name}"),
        browse: name.to_string(),
        display: name.to_string(),
        description: String::new(),
        parent: Parent::Node(owner.to_string()),
        class: Class::Property { value, standard },
    }
}

/// The block folder a point hangs in (`<device>/<block><n>`), if its profile puts it in one.
fn block_folder(dev: &Device, point: &Point) -> Option<NodeDesc> {
    let b = point.block.as_ref()?;
    let label = format!("{} {}", b.label, b.index);
    Some(folder(
        &format!("{}/{}{}", dev.name, b.name, b.index),
        &label,
        &label,
        Parent::Node(dev.name.clone()),
    ))
}

/// The id of the folder a point hangs in: its block folder, else its device.
pub fn parent_of(dev: &Device, point: &Point) -> String {
    match &point.block {
        Some(b) => format!("{}/{}{}", dev.name, b.name, b.index),
        None => dev.name.clone(),
    }
}

/// The folder `id` (a device or a block folder) as a node, or None when it is no folder of a
/// device.
pub fn device_folder(config: &Config, store: &Store, id: &str) -> Option<NodeDesc> {
    let (device, block) = match id.split_once('/') {
        Some((d, b)) => (d, Some(b)),
        None => (id, None),
    };
    let d = config.devices.iter().position(|dev| dev.name == device)?;
    let dev = &config.devices[d];
    let Some(block) = block else {
        return Some(folder(
            &dev.name,
            &dev.name,
            &dev.name,
            Parent::Node(config.site_id.clone()),
        ));
    };
    dev.acquired
        .iter()
        .filter(|&&k| store.point_of(d, k).is_some_and(|p| store.meta(p).is_some()))
        .filter_map(|&k| block_folder(dev, dev.profile.points.get(k)?))
        .find(|f| f.id.strip_prefix(device).and_then(|r| r.strip_prefix('/')) == Some(block))
}

/// One point: its variable, then its properties (EngineeringUnits and EURange of analog
/// values and counters, TrueState/FalseState of binaries, EnumValues of enumerations).
pub fn describe_point(config: &Config, store: &Store, p: PointIdx) -> Vec<NodeDesc> {
    let mut out = Vec::new();
    let Some(meta) = store.meta(p) else { return out };
    let Some(dev) = config.devices.get(meta.device) else {
        return out;
    };
    let k = meta.profile_point;
    let Some(point) = dev.profile.points.get(k) else {
        return out;
    };
    let var_type = match point.kind {
        Kind::Analog => VarType::Analog,
        Kind::Binary => VarType::TwoState,
        Kind::Enum => VarType::MultiStateValue,
        _ => VarType::BaseData,
    };
    out.push(NodeDesc {
        id: meta.id.clone(),
        browse: point.name.clone(),
        display: point.name.clone(),
        description: point.description.clone(),
        parent: Parent::Node(parent_of(dev, point)),
        class: Class::Variable {
            var_type,
            text: point.kind == Kind::String,
            point: p,
            writable: meta.writable,
        },
    });
    match point.kind {
        Kind::Analog | Kind::Counter => {
            out.push(property(
                &meta.id,
                "EngineeringUnits",
                PropValue::Units(point.unit),
                true,
            ));
            if let Some((lo, hi)) = dev.range(k) {
                out.push(property(&meta.id, "EURange", PropValue::Range(lo, hi), true));
            }
        }
        Kind::Binary => {
            let label = |v: i64| point.labels.get(&v).cloned().unwrap_or_else(|| v.to_string());
            out.push(property(&meta.id, "TrueState", PropValue::Localized(label(1)), true));
            out.push(property(&meta.id, "FalseState", PropValue::Localized(label(0)), true));
        }
        Kind::Enum => {
            let values = point.labels.iter().map(|(v, l)| (*v, l.clone())).collect();
            out.push(property(&meta.id, "EnumValues", PropValue::EnumValues(values), true));
        }
        _ => {}
    }
    out
}

fn describe_nodes(config: &Config, store: &Store, with_points: bool) -> Vec<NodeDesc> {
    let mut out = Vec::new();
    out.push(folder("Busbar", "Busbar", "Busbar", Parent::Objects));
    out.push(folder(
        &config.site_id,
        &config.site_id,
        &config.site_name,
        Parent::Node("Busbar".into()),
    ));
    for (d, dev) in config.devices.iter().enumerate() {
        out.push(folder(
            &dev.name,
            &dev.name,
            &dev.name,
            Parent::Node(config.site_id.clone()),
        ));
        for (name, value) in [
            ("Profile", dev.profile.name.clone()),
            ("Model", format!("{} {}", dev.profile.manufacturer, dev.profile.model)),
            ("Family", dev.profile.family.as_str().to_string()),
            ("Connection", config.connections[dev.connection].name.clone()),
        ] {
            out.push(property(&dev.name, name, PropValue::Text(value), false));
        }
        // Live properties, updated by the server every second.
        out.push(property(
            &dev.name,
            "CommStatus",
            PropValue::Text("unknown".into()),
            false,
        ));
        out.push(property(&dev.name, "LastUpdate", PropValue::Text(String::new()), false));
        let mut blocks: Vec<String> = Vec::new();
        for &k in &dev.acquired {
            let Some(p) = store.point_of(d, k).filter(|&p| store.meta(p).is_some()) else {
                continue;
            };
            let Some(point) = dev.profile.points.get(k) else {
                continue;
            };
            if let Some(f) = block_folder(dev, point) {
                if !blocks.contains(&f.id) {
                    blocks.push(f.id.clone());
                    out.push(f);
                }
            }
            if with_points {
                out.extend(describe_point(config, store, p));
            }
        }
        for m in super::methods_of(config, store, d) {
            out.push(NodeDesc {
                id: format!("{}#{}", dev.name, m.name),
                browse: m.name.clone(),
                display: m.name.clone(),
                description: m.description.clone(),
                parent: Parent::Node(dev.name.clone()),
                class: Class::Method {
                    argument: m.fixed.is_none(),
                },
            });
        }
    }
    out
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The description as a NodeSet2 document (namespace index 1 = [`super::NAMESPACE_URI`]).
pub fn nodeset_xml(nodes: &[NodeDesc]) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let id = |s: &str| format!("ns=1;s={}", xml(s));
    let parent_id = |p: &Parent| match p {
        Parent::Objects => "i=85".to_string(),
        Parent::Node(s) => id(s),
    };
    let _ = writeln!(o, r#"<?xml version="1.0" encoding="utf-8"?>"#);
    let _ = writeln!(
        o,
        r#"<UANodeSet xmlns="http://opcfoundation.org/UA/2011/03/UANodeSet.xsd" xmlns:uax="http://opcfoundation.org/UA/2008/02/Types.xsd">"#
    );
    let _ = writeln!(
        o,
        "  <NamespaceUris>\n    <Uri>{}</Uri>\n  </NamespaceUris>",
        super::NAMESPACE_URI
    );
    let _ = writeln!(
        o,
        r#"  <Aliases>
    <Alias Alias="Boolean">i=1</Alias>
    <Alias Alias="Double">i=11</Alias>
    <Alias Alias="String">i=12</Alias>
    <Alias Alias="LocalizedText">i=21</Alias>
    <Alias Alias="Organizes">i=35</Alias>
    <Alias Alias="HasTypeDefinition">i=40</Alias>
    <Alias Alias="HasProperty">i=46</Alias>
    <Alias Alias="HasComponent">i=47</Alias>
    <Alias Alias="Range">i=884</Alias>
    <Alias Alias="EUInformation">i=887</Alias>
    <Alias Alias="EnumValueType">i=7594</Alias>
    <Alias Alias="Argument">i=296</Alias>
  </Aliases>"#
    );
    for n in nodes {
        let display = format!("<DisplayName>{}</DisplayName>", xml(&n.display));
        let description = if n.description.is_empty() {
            String::new()
        } else {
            format!("<Description>{}</Description>", xml(&n.description))
        };
        match &n.class {
            Class::Folder => {
                let _ = writeln!(
                    o,
                    r#"  <UAObject NodeId="{}" BrowseName="1:{}" ParentNodeId="{}">{display}<References><Reference ReferenceType="HasTypeDefinition">i=61</Reference><Reference ReferenceType="Organizes" IsForward="false">{}</Reference></References></UAObject>"#,
                    id(&n.id),
                    xml(&n.browse),
                    parent_id(&n.parent),
                    parent_id(&n.parent)
                );
            }
            Class::Variable {
                var_type,
                text,
                writable,
                ..
            } => {
                let type_def = match var_type {
                    VarType::BaseData => "i=63",
                    VarType::Analog => "i=2368",
                    VarType::TwoState => "i=2373",
                    VarType::MultiStateValue => "i=11238",
                };
                // CurrentRead 1 | HistoryRead 4 (| CurrentWrite 2).
                let access = if *writable { 7 } else { 5 };
                let _ = writeln!(
                    o,
                    r#"  <UAVariable NodeId="{}" BrowseName="1:{}" ParentNodeId="{}" DataType="{}" AccessLevel="{access}" UserAccessLevel="{access}" Historizing="true">{display}{description}<References><Reference ReferenceType="HasTypeDefinition">{type_def}</Reference><Reference ReferenceType="Organizes" IsForward="false">{}</Reference></References></UAVariable>"#,
                    id(&n.id),
                    xml(&n.browse),
                    parent_id(&n.parent),
                    if *text { "String" } else { "Double" },
                    parent_id(&n.parent)
                );
            }
            Class::Property { value, standard } => {
                let browse = if *standard {
                    xml(&n.browse)
                } else {
                    format!("1:{}", xml(&n.browse))
                };
                let (data_type, rank, body) = match value {
                    PropValue::Text(t) => ("String", "-1", format!("<uax:String>{}</uax:String>", xml(t))),
                    PropValue::Localized(t) => ("LocalizedText", "-1", format!("<uax:LocalizedText>\n<uax:Locale>en</uax:Locale><uax:Text>{}</uax:Text></uax:LocalizedText>", xml(t))),
                    PropValue::Units(u) => (
                        "EUInformation",
                        "-1",
                        format!(
                            "<uax:ExtensionObject>
<uax:TypeId><uax:Identifier>i=888</uax:Identifier></uax:TypeId><uax:Body><uax:EUInformation><uax:NamespaceUri>http://www.opcfoundation.org/UA/units/un/cefact</uax:NamespaceUri><uax:UnitId>{}</uax:UnitId><uax:DisplayName><uax:Locale>en</uax:Locale><uax:Text>{}</uax:Text></uax:DisplayName><uax:Description><uax:Locale>en</uax:Locale><uax:Text>{}</uax:Text></uax:Description></uax:EUInformation></uax:Body></uax:ExtensionObject>",
                            super::unece_code(*u).map_or(-1, super::unece_unit_id),
                            xml(u.symbol()),
                            xml(u.name())
                        ),
                    ),
                    PropValue::Range(lo, hi) => (
                        "Range",
                        "-1",
                        format!("<uax:ExtensionObject>
<uax:TypeId><uax:Identifier>i=885</uax:Identifier></uax:TypeId><uax:Body><uax:Range><uax:Low>{lo}</uax:Low><uax:High>{hi}</uax:High></uax:Range></uax:Body></uax:ExtensionObject>"),
                    ),
                    PropValue::EnumValues(values) => {
                        let items: String = values
                            .iter()
                            .map(|(v, l)| format!("<uax:ExtensionObject>
<uax:TypeId><uax:Identifier>i=7616</uax:Identifier></uax:TypeId><uax:Body><uax:EnumValueType><uax:Value>{v}</uax:Value><uax:DisplayName><uax:Locale>en</uax:Locale><uax:Text>{}</uax:Text></uax:DisplayName><uax:Description /></uax:EnumValueType></uax:Body></uax:ExtensionObject>", xml(l)))
                            .collect();
                        ("EnumValueType", "1", format!("<uax:ListOfExtensionObject>
{items}</uax:ListOfExtensionObject>"))
                    }
                };
                let _ = writeln!(
                    o,
                    r#"  <UAVariable NodeId="{}" BrowseName="{browse}" ParentNodeId="{}" DataType="{data_type}" ValueRank="{rank}">{display}<References><Reference ReferenceType="HasTypeDefinition">i=68</Reference><Reference ReferenceType="HasProperty" IsForward="false">{}</Reference></References><Value>{body}</Value></UAVariable>"#,
                    id(&n.id),
                    parent_id(&n.parent),
                    parent_id(&n.parent)
                );
            }
            Class::Method { argument } => {
                let args_id = id(&format!("{}#InputArguments", n.id));
                let args_ref = if *argument {
                    format!(r#"<Reference ReferenceType="HasProperty">{args_id}</Reference>"#)
                } else {
                    String::new()
                };
                let _ = writeln!(
                    o,
                    r#"  <UAMethod NodeId="{}" BrowseName="1:{}" ParentNodeId="{}">{display}{description}<References><Reference ReferenceType="HasComponent" IsForward="false">{}</Reference>{args_ref}</References></UAMethod>"#,
                    id(&n.id),
                    xml(&n.browse),
                    parent_id(&n.parent),
                    parent_id(&n.parent)
                );
                if *argument {
                    let _ = writeln!(
                        o,
                        r#"  <UAVariable NodeId="{args_id}" BrowseName="InputArguments" ParentNodeId="{}" DataType="Argument" ValueRank="1"><DisplayName>InputArguments</DisplayName><References><Reference ReferenceType="HasTypeDefinition">i=68</Reference><Reference ReferenceType="HasProperty" IsForward="false">{}</Reference></References><Value><uax:ListOfExtensionObject>
<uax:ExtensionObject>
<uax:TypeId><uax:Identifier>i=297</uax:Identifier></uax:TypeId><uax:Body><uax:Argument><uax:Name>value</uax:Name><uax:DataType><uax:Identifier>i=11</uax:Identifier></uax:DataType><uax:ValueRank>-1</uax:ValueRank><uax:ArrayDimensions /><uax:Description><uax:Locale>en</uax:Locale><uax:Text>the value, in the point's engineering unit</uax:Text></uax:Description></uax:Argument></uax:Body></uax:ExtensionObject></uax:ListOfExtensionObject></Value></UAVariable>"#,
                        id(&n.id),
                        id(&n.id)
                    );
                }
            }
        }
    }
    // Value containers carry a line break before their first child: some importers (asyncua)
    // read a container without text as an empty value.
    o.push_str("</UANodeSet>\n");
    o
}
