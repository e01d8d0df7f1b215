//! Tank geometry and temperature compensation.
//!
//! - Horizontal cylinder with flat ends: A(h) = R^2 acos((R-h)/R) - (R-h) sqrt(2Rh - h^2),
//!   V(h) = L A(h); or a strapping table (level -> volume, linear interpolation).
//! - Level from volume by bisection (V is monotonic in h).
//! - Volume at 15 °C per ASTM D1250 / API MPMS 11.1, table 54B form:
//!   V15 = V exp(-a dt (1 + 0.8 a dt)), dt = t - 15, a from the density at 15 °C.

use serde::Deserialize;

/// A tank's shape.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Geometry {
    /// Horizontal cylinder, flat ends.
    Cylinder { diameter_mm: f64, length_mm: f64 },
    /// Strapping table: `[[level_mm, volume_l], ...]`, ascending.
    Strapping { strapping: Vec<[f64; 2]> },
}

impl Geometry {
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Geometry::Cylinder { diameter_mm, length_mm } => {
                if !(*diameter_mm > 0.0 && *length_mm > 0.0) {
                    return Err("diameter_mm and length_mm must be positive".into());
                }
            }
            Geometry::Strapping { strapping } => {
                if strapping.len() < 2 {
                    return Err("a strapping table needs at least two rows".into());
                }
                if strapping.windows(2).any(|w| w[1][0] <= w[0][0] || w[1][1] < w[0][1]) {
                    return Err("strapping levels must rise and volumes must not fall".into());
                }
            }
        }
        Ok(())
    }

    /// Height of the tank (mm).
    pub fn height_mm(&self) -> f64 {
        match self {
            Geometry::Cylinder { diameter_mm, .. } => *diameter_mm,
            Geometry::Strapping { strapping } => strapping.last().map_or(0.0, |r| r[0]),
        }
    }

    /// Volume (L) filled up to level `h` (mm).
    pub fn volume_at(&self, h: f64) -> f64 {
        match self {
            Geometry::Cylinder { diameter_mm, length_mm } => {
                let r = diameter_mm / 2.0;
                let h = h.clamp(0.0, 2.0 * r);
                let area =
                    r * r * ((r - h) / r).clamp(-1.0, 1.0).acos() - (r - h) * (2.0 * r * h - h * h).max(0.0).sqrt();
                area * length_mm / 1e6
            }
            Geometry::Strapping { strapping } => {
                let first = strapping.first().copied().unwrap_or([0.0, 0.0]);
                if h <= first[0] {
                    return first[1];
                }
                for w in strapping.windows(2) {
                    let ([h0, v0], [h1, v1]) = (w[0], w[1]);
                    if h <= h1 {
                        return v0 + (v1 - v0) * (h - h0) / (h1 - h0);
                    }
                }
                strapping.last().map_or(0.0, |r| r[1])
            }
        }
    }

    /// Nominal (brim-full) volume (L).
    pub fn nominal_l(&self) -> f64 {
        self.volume_at(self.height_mm())
    }

    /// Level (mm) holding `volume` litres: the inverse of [`Geometry::volume_at`].
    pub fn level_for(&self, volume: f64) -> f64 {
        let (mut lo, mut hi) = (0.0, self.height_mm());
        if volume <= 0.0 {
            return 0.0;
        }
        if volume >= self.volume_at(hi) {
            return hi;
        }
        for _ in 0..60 {
            let mid = 0.5 * (lo + hi);
            if self.volume_at(mid) < volume {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        0.5 * (lo + hi)
    }
}

/// Thermal expansion coefficient at 15 °C (1/°C) for a density at 15 °C (kg/m3), by the
/// product groups of table 54B. LPG is outside the table: 3e-3 is a rough stand-in.
pub fn expansion_coefficient(rho15: f64, lpg: bool) -> f64 {
    if lpg {
        return 3.0e-3;
    }
    let (k0, k1) = if rho15 < 770.0 {
        (346.422_78, 0.438_84)
    } else if rho15 < 778.0 {
        return -0.003_361_2 + 2680.32 / (rho15 * rho15);
    } else if rho15 < 839.0 {
        (594.5418, 0.0)
    } else {
        (186.9696, 0.486_18)
    };
    k0 / (rho15 * rho15) + k1 / rho15
}

/// Volume correction factor from `t` °C to 15 °C.
pub fn vcf(rho15: f64, t: f64, lpg: bool) -> f64 {
    let a = expansion_coefficient(rho15, lpg);
    let dt = t - 15.0;
    (-a * dt * (1.0 + 0.8 * a * dt)).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cyl() -> Geometry {
        Geometry::Cylinder {
            diameter_mm: 2500.0,
            length_mm: 6000.0,
        }
    }

    #[test]
    fn cylinder_volume_at_known_levels() {
        let g = cyl();
        let full = std::f64::consts::PI * 1250.0 * 1250.0 * 6000.0 / 1e6; // 29452.4 L
        assert!((g.nominal_l() - full).abs() < 1e-6);
        // 50 % level: exactly half.
        assert!((g.volume_at(1250.0) / full - 0.5).abs() < 1e-12);
        // 25 % level (h = R/2): (pi/3 - sqrt(3)/4) / pi = 0.195501 of full.
        assert!((g.volume_at(625.0) / full - 0.195_501).abs() < 1e-6);
        // 75 % level: the complement.
        assert!((g.volume_at(1875.0) / full - 0.804_499).abs() < 1e-6);
    }

    #[test]
    fn level_inverts_volume() {
        let g = cyl();
        for h in [0.0, 10.0, 625.0, 1250.0, 2400.0, 2500.0] {
            assert!((g.level_for(g.volume_at(h)) - h).abs() < 1e-6, "{h}");
        }
    }

    #[test]
    fn strapping_table_interpolates() {
        let g = Geometry::Strapping {
            strapping: vec![[0.0, 0.0], [1000.0, 8000.0], [2000.0, 20000.0]],
        };
        assert!(g.validate().is_ok());
        assert_eq!(g.volume_at(500.0), 4000.0);
        assert_eq!(g.volume_at(1500.0), 14000.0);
        assert!((g.level_for(14000.0) - 1500.0).abs() < 1e-6);
        assert!(Geometry::Strapping {
            strapping: vec![[0.0, 0.0], [0.0, 1.0]]
        }
        .validate()
        .is_err());
    }

    #[test]
    fn expansion_coefficients_match_devices_md() {
        // 745 kg/m3 gives ~1.21e-3 /°C; 845 gives ~0.84e-3.
        assert!((expansion_coefficient(745.0, false) - 1.2132e-3).abs() < 1e-6);
        assert!((expansion_coefficient(845.0, false) - 0.8372e-3).abs() < 1e-6);
    }

    #[test]
    fn tc_volume_for_petrol_and_diesel() {
        // Values of exp(-a dt (1 + 0.8 a dt)) computed by hand from the coefficients above.
        let cases = [
            (745.0, 5.0, 1.012_087),
            (745.0, 25.0, 0.987_825),
            (845.0, 5.0, 1.008_351),
            (845.0, 25.0, 0.991_607),
        ];
        for (rho, t, want) in cases {
            let got = vcf(rho, t, false);
            assert!((got - want).abs() < 2e-6, "rho {rho} t {t}: {got} vs {want}");
        }
        assert_eq!(vcf(745.0, 15.0, false), 1.0);
        // Warm product shrinks when compensated: 10000 L at 25 °C is less at 15 °C.
        assert!(10000.0 * vcf(745.0, 25.0, false) < 10000.0);
    }
}
