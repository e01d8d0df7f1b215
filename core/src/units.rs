//! Engineering units. One table: every unit a profile may name, its canonical symbol and the
//! spellings accepted in YAML. Each protocol maps [`Unit`] to its own code in one place
//! (OPC UA UNECE codes, BACnet engineering units, ...).

use std::fmt;

macro_rules! units {
    ($( $variant:ident => $symbol:literal, $name:literal, [$($alias:literal),*] ;)*) => {
        /// A unit of measurement of a point.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Unit {
            $( #[doc = $name] $variant, )*
        }

        impl Unit {
            /// Every unit, in table order.
            pub const ALL: &'static [Unit] = &[$(Unit::$variant,)*];

            /// The canonical symbol (`kWh`, `degC`, `` for dimensionless).
            pub fn symbol(self) -> &'static str {
                match self { $(Unit::$variant => $symbol,)* }
            }

            /// A readable name (`kilowatt hour`).
            pub fn name(self) -> &'static str {
                match self { $(Unit::$variant => $name,)* }
            }

            /// Parse a symbol or one of its aliases; `None` for an unknown unit.
            pub fn parse(text: &str) -> Option<Unit> {
                let t = text.trim();
                $( if t == $symbol $(|| t == $alias)* { return Some(Unit::$variant); } )*
                None
            }
        }
    };
}

units! {
    None => "", "dimensionless", ["none", "-"];
    Percent => "%", "percent", ["pct"];
    Volt => "V", "volt", [];
    Millivolt => "mV", "millivolt", [];
    Ampere => "A", "ampere", [];
    Milliampere => "mA", "milliampere", [];
    Watt => "W", "watt", [];
    Kilowatt => "kW", "kilowatt", [];
    Var => "var", "volt-ampere reactive", ["VAr"];
    Kilovar => "kvar", "kilovolt-ampere reactive", ["kVAr"];
    VoltAmpere => "VA", "volt-ampere", [];
    KilovoltAmpere => "kVA", "kilovolt-ampere", [];
    WattHour => "Wh", "watt hour", [];
    KilowattHour => "kWh", "kilowatt hour", [];
    MegawattHour => "MWh", "megawatt hour", [];
    VarHour => "varh", "var hour", [];
    KilovarHour => "kvarh", "kilovar hour", [];
    KilovoltAmpereHour => "kVAh", "kilovolt-ampere hour", [];
    AmpereHour => "Ah", "ampere hour", [];
    Hertz => "Hz", "hertz", [];
    PowerFactor => "PF", "power factor", ["cos_phi"];
    Ohm => "Ohm", "ohm", ["ohm"];
    Kiloohm => "kOhm", "kiloohm", ["kohm"];
    Megaohm => "MOhm", "megaohm", ["Mohm"];
    Microfarad => "uF", "microfarad", ["µF"];
    DegreeCelsius => "degC", "degree Celsius", ["°C", "C"];
    Millimetre => "mm", "millimetre", [];
    Metre => "m", "metre", [];
    Litre => "L", "litre", ["l", "dm3"];
    CubicMetre => "m3", "cubic metre", [];
    LitrePerMinute => "L/min", "litre per minute", [];
    LitrePerHour => "L/h", "litre per hour", [];
    KilogramPerCubicMetre => "kg/m3", "kilogram per cubic metre", ["g/L"];
    Second => "s", "second", [];
    Minute => "min", "minute", [];
    Hour => "h", "hour", [];
    Count => "count", "count (events)", [];
}

impl Unit {
    /// The quantity a unit measures and its factor to that quantity's base unit.
    fn base(self) -> (&'static str, f64) {
        use Unit::*;
        match self {
            Volt => ("voltage", 1.0),
            Millivolt => ("voltage", 1e-3),
            Ampere => ("current", 1.0),
            Milliampere => ("current", 1e-3),
            Watt => ("power", 1.0),
            Kilowatt => ("power", 1e3),
            Var => ("reactive", 1.0),
            Kilovar => ("reactive", 1e3),
            VoltAmpere => ("apparent", 1.0),
            KilovoltAmpere => ("apparent", 1e3),
            WattHour => ("energy", 1.0),
            KilowattHour => ("energy", 1e3),
            MegawattHour => ("energy", 1e6),
            VarHour => ("reactive_energy", 1.0),
            KilovarHour => ("reactive_energy", 1e3),
            Ohm => ("resistance", 1.0),
            Kiloohm => ("resistance", 1e3),
            Megaohm => ("resistance", 1e6),
            Litre => ("volume", 1.0),
            CubicMetre => ("volume", 1e3),
            Second => ("time", 1.0),
            Minute => ("time", 60.0),
            Hour => ("time", 3600.0),
            Millimetre => ("length", 1e-3),
            Metre => ("length", 1.0),
            LitrePerMinute => ("flow", 1.0 / 60.0),
            LitrePerHour => ("flow", 1.0 / 3600.0),
            other => (other.symbol(), 1.0),
        }
    }

    /// Convert `value` from this unit to `to` when both measure the same quantity
    /// (`kWh` -> `Wh`, `mA` -> `A`); `None` otherwise.
    pub fn convert(self, value: f64, to: Unit) -> Option<f64> {
        if self == to {
            return Some(value);
        }
        let (qa, fa) = self.base();
        let (qb, fb) = to.base();
        (qa == qb).then(|| value * fa / fb)
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_symbol_parses_back_to_its_unit() {
        for u in Unit::ALL {
            assert_eq!(Unit::parse(u.symbol()), Some(*u), "{u:?}");
        }
    }

    #[test]
    fn aliases_and_unknowns() {
        assert_eq!(Unit::parse("°C"), Some(Unit::DegreeCelsius));
        assert_eq!(Unit::parse("dm3"), Some(Unit::Litre));
        assert_eq!(Unit::parse("furlong"), None);
    }

    #[test]
    fn converts_within_a_quantity_only() {
        assert_eq!(Unit::KilowattHour.convert(1.5, Unit::WattHour), Some(1500.0));
        assert_eq!(Unit::Milliampere.convert(250.0, Unit::Ampere), Some(0.25));
        assert_eq!(Unit::CubicMetre.convert(2.0, Unit::Litre), Some(2000.0));
        assert_eq!(Unit::Volt.convert(1.0, Unit::Ampere), None);
        assert_eq!(Unit::Percent.convert(5.0, Unit::Percent), Some(5.0));
    }

    #[test]
    fn symbols_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for u in Unit::ALL {
            assert!(seen.insert(u.symbol()), "duplicate symbol {}", u.symbol());
        }
    }
}
