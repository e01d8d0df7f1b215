//! Unit -> BACnetEngineeringUnits, the one mapping for BACnet. Units BACnet has no code for
//! are served as no-units (95) and named in the object's Description.

use busbar_core::units::Unit;

/// BACnet's `no-units`.
pub const NO_UNITS: u32 = 95;

/// The BACnet engineering unit of `unit`, or `None` when BACnet has no exact one.
pub fn bacnet_unit(unit: Unit) -> Option<u32> {
    use Unit::*;
    Some(match unit {
        None => NO_UNITS,
        Percent => 98,
        Volt => 5,
        Millivolt => 124,
        Ampere => 3,
        Milliampere => 2,
        Watt => 47,
        Kilowatt => 48,
        Var => 11,
        Kilovar => 12,
        VoltAmpere => 8,
        KilovoltAmpere => 9,
        WattHour => 18,
        KilowattHour => 19,
        MegawattHour => 146,
        VarHour => 242,
        KilovarHour => 243,
        KilovoltAmpereHour => 240,
        Hertz => 27,
        PowerFactor => 15,
        Ohm => 4,
        Kiloohm => 122,
        Megaohm => 123,
        DegreeCelsius => 62,
        Millimetre => 30,
        Metre => 31,
        Litre => 82,
        CubicMetre => 80,
        LitrePerMinute => 88,
        LitrePerHour => 136,
        KilogramPerCubicMetre => 186,
        Second => 73,
        Minute => 72,
        Hour => 71,
        // No exact BACnet unit: ampere-hours, microfarads, event counts.
        AmpereHour | Microfarad | Count => return Option::None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_has_a_distinct_code_or_is_named_unmapped() {
        let mut seen = std::collections::HashMap::new();
        let mut unmapped = Vec::new();
        for &u in Unit::ALL {
            match bacnet_unit(u) {
                Some(code) => {
                    if let Some(other) = seen.insert(code, u) {
                        panic!("{u:?} and {other:?} share BACnet unit {code}");
                    }
                }
                Option::None => unmapped.push(u),
            }
        }
        assert_eq!(unmapped, [Unit::AmpereHour, Unit::Microfarad, Unit::Count]);
        // Codes checked against ASHRAE 135 clause 21 (and bacpypes3's EngineeringUnits).
        assert_eq!(bacnet_unit(Unit::KilowattHour), Some(19));
        assert_eq!(bacnet_unit(Unit::DegreeCelsius), Some(62));
        assert_eq!(bacnet_unit(Unit::Megaohm), Some(123));
        assert_eq!(bacnet_unit(Unit::Litre), Some(82));
        assert_eq!(bacnet_unit(Unit::PowerFactor), Some(15));
    }
}
