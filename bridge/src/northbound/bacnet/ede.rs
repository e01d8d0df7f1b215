//! `busbar export ede`: the Engineering Data Exchange files (EDE 2.3, the B.I.G.-EU CSV layout)
//! BMS integrators import: one row per object, the state texts of multi-state objects, and the
//! unit codes used.

use super::events::Algorithm;
use super::objects::{ObjectClass, ObjectTable};

/// One file: name and content.
pub struct EdeFile {
    pub name: String,
    pub content: String,
}

/// Fields must not carry the separator or a line break.
fn field(text: &str) -> String {
    text.replace([';', '\n', '\r'], " ")
}

fn header(out: &mut String, project: &str, timestamp: &str, what: &str) {
    out.push_str(&format!(
        "# {what} - B.I.G.-EU Engineering Data Exchange, written by busbar\n"
    ));
    out.push_str(&format!("PROJECT_NAME;{}\n", field(project)));
    out.push_str("VERSION_OF_REFERENCEFILE;1\n");
    out.push_str(&format!("TIMESTAMP_OF_LAST_CHANGE;{timestamp}\n"));
    out.push_str("AUTHOR_OF_LAST_CHANGE;busbar\n");
    out.push_str("VERSION_OF_LAYOUT;2.3\n");
}

/// The three files for the tables of a layout (the site device alone, or the router device and
/// one device per field device). `unit_text` names a BACnet unit code (for the units file).
pub fn files(
    tables: &[ObjectTable],
    project: &str,
    prefix: &str,
    timestamp: &str,
    unit_text: impl Fn(u32) -> String,
) -> Vec<EdeFile> {
    let mut ede = String::new();
    header(&mut ede, project, timestamp, "EDE data");
    ede.push_str(
        "# keyname;device obj.-instance;object-name;object-type;object-instance;description;present-value-default;\
         min-present-value;max-present-value;settable;supports COV;hi-limit;low-limit;state-text-reference;unit-code;\
         vendor-specific-address\n",
    );
    let mut states = String::new();
    header(&mut states, project, timestamp, "State texts");
    states.push_str("#Reference-Number;Text 1;Text 2;...\n");
    let mut units = std::collections::BTreeSet::new();
    let mut state_ref = 0u32;
    for table in tables {
        let dev = table.device.id.instance;
        // Where a device on the virtual network is: network and MAC address.
        let address = table
            .device
            .route
            .as_ref()
            .map(|r| {
                let mac: String = r.mac.iter().map(|b| format!("{b:02X}")).collect();
                format!("net {} mac {mac}", r.net)
            })
            .unwrap_or_default();
        ede.push_str(&format!(
            "{};{dev};{};8;{dev};{};;;;N;N;;;;;{address}\n",
            field(&table.device.name),
            field(&table.device.name),
            field(&table.device.description)
        ));
        for o in &table.objects {
            let reference = if o.states.is_empty() && o.binary_text.is_none() {
                String::new()
            } else {
                state_ref += 1;
                let texts: Vec<String> = match &o.binary_text {
                    Some((inactive, active)) => vec![field(inactive), field(active)],
                    None => o.states.iter().map(|(_, t)| field(t)).collect(),
                };
                states.push_str(&format!("{state_ref};{}\n", texts.join(";")));
                state_ref.to_string()
            };
            let analog = matches!(o.class, ObjectClass::AnalogInput | ObjectClass::AnalogValue);
            let unit = if analog {
                units.insert(o.units);
                o.units.to_string()
            } else {
                String::new()
            };
            let (min, max) = match (analog, o.range) {
                (true, Some((lo, hi))) => (lo.to_string(), hi.to_string()),
                _ => (String::new(), String::new()),
            };
            let settable = if o.class.commandable() { "Y" } else { "N" };
            let (hi, lo) = match o.event.as_ref().map(|e| &e.algorithm) {
                Some(Algorithm::OutOfRange { high, low, .. }) => (
                    high.map(|v| v.to_string()).unwrap_or_default(),
                    low.map(|v| v.to_string()).unwrap_or_default(),
                ),
                _ => (String::new(), String::new()),
            };
            ede.push_str(&format!(
                "{};{dev};{};{};{};{};;{min};{max};{settable};Y;{hi};{lo};{reference};{unit};\n",
                field(&o.name),
                field(&o.name),
                o.id.object_type,
                o.id.instance,
                field(&o.description),
            ));
        }
        for c in &table.classes {
            // Keynames are unique in the file: a class's name with its device's.
            let key = if table.device.route.is_some() {
                format!("{}.{}", table.device.name, c.name)
            } else {
                c.name.clone()
            };
            ede.push_str(&format!(
                "{};{dev};{};{};{};{};;;;N;N;;;;;\n",
                field(&key),
                field(&c.name),
                c.id.object_type,
                c.id.instance,
                field(&c.description()),
            ));
        }
    }
    let mut unit_file = String::new();
    header(&mut unit_file, project, timestamp, "Units");
    unit_file.push_str("#Unit-code;Unit-Text\n");
    for u in units {
        unit_file.push_str(&format!("{u};{}\n", field(&unit_text(u))));
    }
    vec![
        EdeFile {
            name: format!("{prefix}_EDE.csv"),
            content: ede,
        },
        EdeFile {
            name: format!("{prefix}_StateTexts.csv"),
            content: states,
        },
        EdeFile {
            name: format!("{prefix}_Units.csv"),
            content: unit_file,
        },
    ]
}

/// The unit text of a BACnet unit code: the symbol of the first busbar unit mapped to it.
pub fn unit_text(code: u32) -> String {
    busbar_core::units::Unit::ALL
        .iter()
        .find(|u| super::units::bacnet_unit(**u) == Some(code))
        .map_or_else(|| "no-units".to_string(), |u| u.symbol().to_string())
}
