//! The dashboards: site overview, energy (meters, breakers, pulse counters), transfer switch,
//! insulation, tanks (with separators and vapour recovery), EV charging, and alarms; every one
//! shows the alarms raised as annotations.

use super::model::{
    online_mappings, stat, state_timeline, table, thresholds, timeseries, Dashboard, Draw, Query, Schema, Series,
};
use crate::sinks::influxdb::schema::ALARM;
use busbar_core::profile::Family;
use busbar_core::units::Unit;
use serde_json::Value;

/// Every dashboard, built against `schema`; check `schema.errors()` afterwards.
pub fn all(schema: &Schema) -> Vec<Dashboard> {
    let mut all = vec![
        site(schema),
        energy(schema),
        transfer_switch(schema),
        insulation(schema),
        tanks(schema),
        ev_charging(schema),
        alarms(),
    ];
    for d in &mut all {
        d.annotation(
            "Alarms raised",
            "red",
            &alarm_query("\"message\"", "AND \"kind\" = 'raised'", "", false),
        );
    }
    all
}

/// A query of the alarm events (the history's `alarm` measurement) of the chosen site.
fn alarm_query(select: &str, filter: &str, group_by: &str, table: bool) -> Query {
    let group = if group_by.is_empty() {
        String::new()
    } else {
        format!(" GROUP BY {group_by}")
    };
    Query {
        text: format!("SELECT {select} FROM \"{ALARM}\" WHERE \"site\" =~ /^$site$/ {filter} AND $timeFilter{group}"),
        alias: if table { String::new() } else { "$tag_severity".into() },
        table,
    }
}

/// The alarms dashboard: every transition in the range, raises per hour by severity, counts.
fn alarms() -> Dashboard {
    let mut d = Dashboard::new(
        "busbar-alarms",
        "Busbar / Alarms",
        "Every alarm transition of the site in the time range (raised, cleared, acknowledged, shelved...), as the bridge journaled them.",
    );
    d.row("Alarms");
    d.add(
        8,
        6,
        stat(
            "Alarms raised in the range",
            "Raise transitions, every severity.",
            Unit::Count,
            serde_json::json!([]),
            None,
            &[alarm_query("count(\"message\")", "AND \"kind\" = 'raised'", "", false)],
        ),
    );
    d.add(
        8,
        6,
        stat(
            "Alarms cleared in the range",
            "Transitions back to normal.",
            Unit::Count,
            serde_json::json!([]),
            None,
            &[alarm_query("count(\"message\")", "AND \"kind\" = 'cleared'", "", false)],
        ),
    );
    d.add(
        8,
        6,
        timeseries(
            "Alarms raised per hour, by severity",
            "",
            Unit::Count,
            &[alarm_query(
                "count(\"message\")",
                "AND \"kind\" = 'raised'",
                "time(1h), \"severity\" fill(0)",
                false,
            )],
            Draw::Bars,
            None,
        ),
    );
    d.add(
        24,
        12,
        table(
            "Alarm transitions",
            "Newest last; `user` is who acknowledged, shelved or disabled it.",
            &[alarm_query(
                "\"message\", \"active\", \"acknowledged\", \"user\"",
                "",
                "\"device\", \"alarm\", \"kind\", \"severity\"",
                true,
            )],
        ),
    );
    d
}

/// The dashboard (uid) that shows each family in depth: one per family, and the compiler refuses a
/// family without one. A test checks that the dashboard does read the family's measurement.
pub fn dashboard_of(family: Family) -> &'static str {
    match family {
        Family::Meter | Family::Breaker | Family::PulseCounter => "busbar-energy",
        Family::TransferSwitch => "busbar-ats",
        Family::InsulationMonitor | Family::FaultLocator => "busbar-insulation",
        Family::TankGauge | Family::OilSeparator | Family::VapourRecovery => "busbar-tanks",
        Family::Charger | Family::LoadManager => "busbar-ev",
    }
}

/// The last value of `fields` of `series` over time, on one axis.
fn trend(s: &Schema, family: Family, series: Series, title: &str, desc: &str, fields: &[&str], draw: Draw) -> Value {
    let unit = s.unit_of(family, fields);
    timeseries(title, desc, unit, &[series.over_time("last", fields)], draw, None)
}

/// Like [`trend`], with limits drawn as dashed lines.
fn trend_within(
    s: &Schema,
    family: Family,
    series: Series,
    title: &str,
    desc: &str,
    fields: &[&str],
    limits: Value,
) -> Value {
    let unit = s.unit_of(family, fields);
    timeseries(
        title,
        desc,
        unit,
        &[series.over_time("last", fields)],
        Draw::Lines,
        Some(limits),
    )
}

/// An enum (or binary) field's states over time.
fn states(s: &Schema, family: Family, series: Series, title: &str, desc: &str, fields: &[&str]) -> Value {
    state_timeline(
        title,
        desc,
        s.mappings_of(family, fields),
        &[series.over_time("last", fields)],
    )
}

fn site(s: &Schema) -> Dashboard {
    let mut d = Dashboard::new(
        "busbar-site",
        "Busbar / Site overview",
        "Communication with every device, and the states and alarms of the site at a glance.",
    );
    d.row("Communication");
    d.add(
        16,
        8,
        state_timeline(
            "Device communication",
            "device_status.online per device: red while the bridge cannot read it.",
            online_mappings(),
            &[Series::status().over_time("last", &["online"])],
        ),
    );
    d.add(
        8,
        8,
        table(
            "Failed polls",
            "Per device over the time range: failed polls in all, and the longest run of failures.",
            &[Series::status().table(&[
                ("last", "failures", "failed polls"),
                ("max", "consecutive_failures", "longest run"),
            ])],
        ),
    );
    d.row("States and alarms");
    let wide = |f: Family| Series::site_wide(f);
    d.add(
        12,
        6,
        states(
            s,
            Family::TransferSwitch,
            wide(Family::TransferSwitch),
            "Transfer switch position",
            "",
            &["position"],
        ),
    );
    d.add(
        12,
        6,
        states(
            s,
            Family::Breaker,
            wide(Family::Breaker),
            "Breakers",
            "Open, closed or tripped.",
            &["state"],
        ),
    );
    d.add(
        12,
        6,
        states(
            s,
            Family::InsulationMonitor,
            wide(Family::InsulationMonitor),
            "Insulation monitors",
            "Alarm state of each insulation monitor (IEC 61557-8).",
            &["alarm_state"],
        ),
    );
    d.add(
        12,
        6,
        states(s, Family::Charger, wide(Family::Charger), "Chargers", "", &["state"]),
    );
    let tanks = Series::site_wide(Family::TankGauge).by_block("tank", None);
    d.add(
        12,
        6,
        states(
            s,
            Family::TankGauge,
            tanks,
            "Tank product alarms",
            "",
            &["product_alarm"],
        ),
    );
    d.add(
        12,
        6,
        states(s, Family::TankGauge, tanks, "Tank water alarms", "", &["water_alarm"]),
    );
    d.add(
        12,
        6,
        states(
            s,
            Family::OilSeparator,
            wide(Family::OilSeparator),
            "Oil separator alarms",
            "Light liquid and sludge layers (EN 858).",
            &["light_liquid_alarm", "sludge_alarm"],
        ),
    );
    d.add(
        12,
        6,
        states(
            s,
            Family::VapourRecovery,
            Series::site_wide(Family::VapourRecovery).by_block("fp", None),
            "Vapour recovery",
            "Status of each fuelling point's sides A and B.",
            &["a_status", "b_status"],
        ),
    );
    d.row("Power");
    d.add(
        24,
        8,
        trend(
            s,
            Family::Meter,
            wide(Family::Meter),
            "Active power per meter",
            "",
            &["p"],
            Draw::Lines,
        ),
    );
    d
}

fn energy(s: &Schema) -> Dashboard {
    let m = Family::Meter;
    let mut d = Dashboard::new(
        "busbar-energy",
        "Busbar / Energy",
        "Power, energy per hour and per day, power factor, and the quality of supply against EN 50160.",
    );
    d.device_variable("device", "Meter", m);
    let meters = Series::family(m, "device");
    d.row("Power and energy");
    d.add(12, 8, trend(s, m, meters, "Active power", "", &["p"], Draw::Lines));
    d.add(
        12,
        8,
        trend(
            s,
            m,
            meters,
            "Power factor",
            "Total power factor.",
            &["pf"],
            Draw::Lines,
        ),
    );
    let unit = s.unit_of(m, &["ea_import"]);
    d.add(
        12,
        8,
        timeseries(
            "Energy per hour",
            "Imported active energy per hour: the rise of the energy register within each hour.",
            unit,
            &[meters.per_bucket("spread", "ea_import", "1h")],
            Draw::Bars,
            None,
        ),
    );
    d.add(
        12,
        8,
        timeseries(
            "Energy per day",
            "Imported active energy per day.",
            unit,
            &[meters.per_bucket("spread", "ea_import", "1d")],
            Draw::Bars,
            None,
        ),
    );
    d.row("Quality of supply (EN 50160)");
    d.add(
        12,
        8,
        trend_within(
            s,
            m,
            meters,
            "Phase voltages",
            "EN 50160: 230 V +/- 10 % (207..253 V) for 95 % of the 10-minute means of a week.",
            &["v1", "v2", "v3"],
            thresholds("red", &[(207.0, "green"), (253.0, "red")]),
        ),
    );
    d.add(
        12,
        8,
        trend_within(
            s,
            m,
            meters,
            "Frequency",
            "EN 50160 (interconnected systems): 50 Hz +/- 1 % (49.5..50.5 Hz) for 99.5 % of a year.",
            &["frequency"],
            thresholds("red", &[(49.5, "green"), (50.5, "red")]),
        ),
    );
    d.add(
        12,
        8,
        trend_within(
            s,
            m,
            meters,
            "Voltage THD",
            "EN 50160: total harmonic distortion of the voltage at most 8 %.",
            &["thd_v1", "thd_v2", "thd_v3"],
            thresholds("green", &[(8.0, "red")]),
        ),
    );
    d.add(
        12,
        8,
        trend(
            s,
            m,
            meters,
            "Current THD",
            "",
            &["thd_i1", "thd_i2", "thd_i3"],
            Draw::Lines,
        ),
    );
    d.add(
        24,
        8,
        trend(s, m, meters, "Phase currents", "", &["i1", "i2", "i3"], Draw::Lines),
    );
    breakers(s, &mut d);
    pulse_counters(s, &mut d);
    d
}

/// The energy dashboard's breaker row: state, currents, power, trips.
fn breakers(s: &Schema, d: &mut Dashboard) {
    let b = Family::Breaker;
    d.device_variable("breaker", "Breaker", b);
    let breakers = Series::family(b, "breaker");
    d.row("Breakers");
    d.add(12, 8, states(s, b, breakers, "Breaker state", "", &["state"]));
    d.add(
        12,
        8,
        states(s, b, breakers, "Cause of the last trip", "", &["trip_cause"]),
    );
    d.add(
        12,
        8,
        trend(s, b, breakers, "Breaker currents", "", &["i1", "i2", "i3"], Draw::Lines),
    );
    d.add(12, 8, trend(s, b, breakers, "Breaker power", "", &["p"], Draw::Lines));
    d.add(
        12,
        8,
        stat(
            "Trips in the range",
            "Rise of the trip counter over the dashboard's time range.",
            s.unit_of(b, &["trip_count"]),
            serde_json::json!([]),
            None,
            &[breakers.whole_range("spread", "trip_count")],
        ),
    );
}

/// The energy dashboard's pulse counter row: consumption per hour and flow, per input.
fn pulse_counters(s: &Schema, d: &mut Dashboard) {
    let c = Family::PulseCounter;
    d.device_variable("counter", "Pulse counter", c);
    let inputs = Series::family(c, "counter").by_block("input", None);
    d.row("Pulse counters (water, gas)");
    d.add(
        12,
        8,
        timeseries(
            "Consumption per hour",
            "The rise of each input's consumption register within each hour.",
            s.unit_of(c, &["consumption"]),
            &[inputs.per_bucket("spread", "consumption", "1h")],
            Draw::Bars,
            None,
        ),
    );
    d.add(12, 8, trend(s, c, inputs, "Flow rate", "", &["flow_rate"], Draw::Lines));
}

fn transfer_switch(s: &Schema) -> Dashboard {
    let f = Family::TransferSwitch;
    let mut d = Dashboard::new(
        "busbar-ats",
        "Busbar / Transfer switch",
        "Automatic transfer switch: position, sources, transfers, and the generator's starts and run time.",
    );
    d.device_variable("device", "Transfer switch", f);
    let ats = Series::family(f, "device");
    d.add(
        24,
        5,
        states(
            s,
            f,
            ats,
            "Position",
            "Position 1 = source I (mains), 2 = source II.",
            &["position"],
        ),
    );
    d.add(
        24,
        6,
        states(
            s,
            f,
            ats,
            "Sources",
            "State of source I and source II.",
            &["source1_state", "source2_state"],
        ),
    );
    d.add(
        12,
        8,
        trend(
            s,
            f,
            ats,
            "Source voltages",
            "",
            &["source1_voltage", "source2_voltage"],
            Draw::Lines,
        ),
    );
    d.add(
        12,
        8,
        trend(
            s,
            f,
            ats,
            "Source frequencies",
            "",
            &["source1_frequency", "source2_frequency"],
            Draw::Lines,
        ),
    );
    for (title, field) in [
        ("Automatic transfers in range", "auto_transfers"),
        ("Engine starts in range", "engine_starts"),
        ("Engine run time in range", "engine_run_time"),
    ] {
        let unit = s.unit_of(f, &[field]);
        d.add(
            6,
            4,
            stat(
                title,
                "The rise of the counter over the time range.",
                unit,
                serde_json::json!([]),
                None,
                &[ats.whole_range("spread", field)],
            ),
        );
    }
    let unit = s.unit_of(f, &["engine_run_time"]);
    d.add(
        6,
        4,
        stat(
            "Engine run time (total)",
            "",
            unit,
            serde_json::json!([]),
            None,
            &[ats.whole_range("last", "engine_run_time")],
        ),
    );
    d.add(
        12,
        8,
        trend(
            s,
            f,
            ats,
            "Transfers",
            "Transfer counters.",
            &["auto_transfers", "remote_transfers"],
            Draw::Steps,
        ),
    );
    d.add(
        12,
        8,
        trend(
            s,
            f,
            ats,
            "Engine run time",
            "Generator running, and running on load.",
            &["engine_run_time", "engine_on_load_time"],
            Draw::Steps,
        ),
    );
    d
}

fn insulation(s: &Schema) -> Dashboard {
    let imd = Family::InsulationMonitor;
    let loc = Family::FaultLocator;
    let mut d = Dashboard::new(
        "busbar-insulation",
        "Busbar / Insulation",
        "IT systems: insulation resistance and leakage capacitance per monitor against its thresholds, and the fault locator's circuits.",
    );
    d.device_variable("device", "Insulation monitor", imd);
    d.device_variable("locator", "Fault locator", loc);
    d.block_variable("circuit", "Circuit", loc, "circuit", "locator");
    let monitors = Series::family(imd, "device");
    d.row("Insulation monitors");
    d.add(
        12,
        8,
        trend(
            s,
            imd,
            monitors,
            "Insulation resistance Rf",
            "Rf against the prewarning and alarm thresholds set in the monitor.",
            &["rf", "prewarning_threshold", "alarm_threshold"],
            Draw::Lines,
        ),
    );
    d.add(
        12,
        8,
        trend(s, imd, monitors, "Leakage capacitance Ce", "", &["ce"], Draw::Lines),
    );
    d.add(24, 5, states(s, imd, monitors, "Alarm state", "", &["alarm_state"]));
    let circuits = Series::family(loc, "locator").by_block("circuit", Some("circuit"));
    d.row("Fault locator");
    d.add(
        12,
        8,
        trend(s, loc, circuits, "Rf per circuit", "", &["rf"], Draw::Lines),
    );
    d.add(
        12,
        8,
        trend(
            s,
            loc,
            circuits,
            "Residual current per circuit",
            "",
            &["residual_current"],
            Draw::Lines,
        ),
    );
    d.add(24, 6, states(s, loc, circuits, "Circuit alarms", "", &["alarm_state"]));
    d
}

fn tanks(s: &Schema) -> Dashboard {
    let f = Family::TankGauge;
    let mut d = Dashboard::new(
        "busbar-tanks",
        "Busbar / Tanks",
        "Tank gauges (volume, temperature-compensated volume, ullage, water) with deliveries as annotations; oil separator and vapour recovery.",
    );
    d.device_variable("device", "Tank gauge", f);
    d.block_variable("tank", "Tank", f, "tank", "device");
    let tanks = Series::family(f, "device").by_block("tank", Some("tank"));
    d.annotation("Deliveries", "blue", &tanks.rises("delivery_in_progress"));
    d.row("Tanks");
    d.add(12, 8, trend(s, f, tanks, "Volume", "", &["volume"], Draw::Lines));
    d.add(
        12,
        8,
        trend(
            s,
            f,
            tanks,
            "Temperature-compensated volume",
            "Volume at 15 degC.",
            &["tc_volume"],
            Draw::Lines,
        ),
    );
    d.add(
        12,
        8,
        trend(s, f, tanks, "Ullage", "Free volume.", &["ullage"], Draw::Lines),
    );
    d.add(
        12,
        8,
        trend(
            s,
            f,
            tanks,
            "Water",
            "Water at the bottom of the tank.",
            &["water_volume"],
            Draw::Lines,
        ),
    );
    d.add(
        12,
        8,
        trend(s, f, tanks, "Product temperature", "", &["temperature"], Draw::Lines),
    );
    d.add(
        12,
        8,
        states(s, f, tanks, "Delivery in progress", "", &["delivery_in_progress"]),
    );
    d.row("Oil separator");
    let sep = Family::OilSeparator;
    d.add(
        24,
        8,
        trend(
            s,
            sep,
            Series::site_wide(sep),
            "Separator layers",
            "Light liquid and sludge layer thicknesses.",
            &["light_liquid", "sludge"],
            Draw::Lines,
        ),
    );
    d.row("Vapour recovery");
    let vr = Family::VapourRecovery;
    d.add(
        24,
        8,
        trend_within(
            s,
            vr,
            Series::site_wide(vr).by_block("fp", None),
            "Recovery rate per fuelling point",
            "Sides A and B; the usual window is 95..105 %.",
            &["a_recovery_rate", "b_recovery_rate"],
            thresholds("red", &[(95.0, "green"), (105.0, "red")]),
        ),
    );
    d
}

fn ev_charging(s: &Schema) -> Dashboard {
    let f = Family::Charger;
    let mut d = Dashboard::new(
        "busbar-ev",
        "Busbar / EV charging",
        "Charging current per charger against the load manager's limit, the site current against the site limit, sessions.",
    );
    d.device_variable("device", "Charger", f);
    d.device_variable("meter", "Site meter", Family::Meter);
    let chargers = Series::family(f, "device");
    d.add(24, 6, states(s, f, chargers, "State", "", &["state"]));
    d.add(
        12,
        8,
        trend(
            s,
            f,
            chargers,
            "Current per charger",
            "Phase 1 current against the current limit set by the load manager and the current advertised to the vehicle.",
            &["i1", "current_limit", "current_setpoint"],
            Draw::Lines,
        ),
    );
    d.add(
        12,
        8,
        trend_within(
            s,
            Family::Meter,
            Series::family(Family::Meter, "meter"),
            "Site current against the site limit",
            "Phase currents of the site meter. The dashed line is the maximum current available to the site (250 A here): edit the panel's threshold to your site's.",
            &["i1", "i2", "i3"],
            thresholds("green", &[(230.0, "orange"), (250.0, "red")]),
        ),
    );
    let lm = Family::LoadManager;
    d.add(
        12,
        8,
        trend(
            s,
            lm,
            Series::site_wide(lm),
            "Load manager: measured current against its borders",
            "The most loaded phase of the consumption meter, the green/yellow border (maximum current for charging), the yellow/red border (maximum current available) and the current left for charging.",
            &["measured_current", "max_charging_current", "max_current", "available_current"],
            Draw::Lines,
        ),
    );
    d.add(
        6,
        8,
        states(
            s,
            lm,
            Series::site_wide(lm),
            "Load manager: zone",
            "Green: requests are granted. Yellow: nothing new; sessions reduced while a request waits. Red: sessions reduced, then stopped.",
            &["zone"],
        ),
    );
    d.add(
        6,
        8,
        states(
            s,
            lm,
            Series::site_wide(lm),
            "Load manager: mode",
            "Running, safe state (meter silent or bad, a station refused a write), commissioning (control logic off) or unlimited (load control off).",
            &["mode"],
        ),
    );
    d.add(
        12,
        8,
        trend(s, f, chargers, "Charging power", "", &["power"], Draw::Lines),
    );
    d.add(
        12,
        8,
        trend(
            s,
            f,
            chargers,
            "Session energy",
            "Energy delivered in the current session.",
            &["session_energy"],
            Draw::Lines,
        ),
    );
    let unit = s.unit_of(f, &["total_energy"]);
    d.add(
        24,
        4,
        stat(
            "Energy delivered in range",
            "The rise of each charger's total energy register over the time range.",
            unit,
            serde_json::json!([]),
            None,
            &[chargers.whole_range("spread", "total_energy")],
        ),
    );
    d
}
