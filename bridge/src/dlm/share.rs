//! Continuous fair sharing, beside the Green'Up steps (docs/load-management.md).
//!
//! The current left for charging on each phase (the green/yellow border less the load that is
//! not charging) is shared among the sessions: each gets `weight x lambda`, at least 6 A and at
//! most its rating, with the largest `lambda` every phase allows (priority sessions weigh
//! `priority_weight`). A request joins once it has waited the hold time. When even 6 A each does
//! not fit, sessions leave in the manual's stop order (non-priority, guaranteed charge received,
//! connected longest), then requests not yet started (the latest first); a session that has not
//! received its guaranteed charge is stopped only when even so 6 A each is above the maximum
//! current (the hard limit: [`next_to_force_stop`]). A session that draws less than its limit for
//! the settle time (the vehicle's own limit) is capped at its draw plus 2 A, so the rest goes to
//! the others. Limits are whole amperes; a limit goes down at once and up only by 2 A or more,
//! once per settle time.

use super::model::{decision, switched_off};
use super::model::{
    max_phase, next_to_force_stop, next_to_stop, observe, Decision, Params, Reason, Setpoint, Side, Strategy, Track,
    Zone, MIN_CHARGING_A,
};

/// A session drawing this much below its limit is limited by its vehicle.
const UNDERDRAW_A: f64 = 2.0;
/// The smallest rise worth a write.
const RAISE_STEP_A: f64 = 2.0;

#[derive(Debug, Clone, Default)]
struct ShareTrack {
    /// Since when the session draws less than its limit by [`UNDERDRAW_A`].
    underdraw_since: Option<f64>,
    last_raise: Option<f64>,
}

/// Fair sharing over the sides it is given.
#[derive(Debug, Clone)]
pub struct FairShare {
    p: Params,
    zone: Zone,
    tracks: Vec<Track>,
    share: Vec<ShareTrack>,
}

impl FairShare {
    pub fn new(p: Params) -> FairShare {
        FairShare {
            p,
            zone: Zone::Green,
            tracks: Vec::new(),
            share: Vec::new(),
        }
    }

    /// The most a side may take: its rating, or its vehicle's draw when the vehicle limits it.
    fn ceiling(&self, i: usize, side: &Side, now: f64) -> f64 {
        match self.share[i].underdraw_since {
            Some(since) if now - since >= self.p.settle_s => {
                (side.current_a + UNDERDRAW_A).clamp(MIN_CHARGING_A, side.rated_a)
            }
            _ => side.rated_a,
        }
    }

    fn follow_draw(&mut self, now: f64, sides: &[Side]) {
        self.share.resize_with(sides.len(), ShareTrack::default);
        for (i, side) in sides.iter().enumerate() {
            let t = &self.tracks[i];
            let s = &mut self.share[i];
            if !side.state.connected() {
                *s = ShareTrack::default();
                continue;
            }
            let under = t.running()
                && t.granted_at.is_none()
                && side.current_a < t.setpoint.limit_a - UNDERDRAW_A
                && s.last_raise.is_none_or(|r| now - r >= self.p.settle_s);
            if !under {
                s.underdraw_since = None;
            } else {
                s.underdraw_since.get_or_insert(now);
            }
        }
    }

    /// The largest lambda whose shares fit `cap` on every phase, and the shares.
    fn water_fill(&self, members: &[usize], sides: &[Side], ceilings: &[f64], cap: [f64; 3]) -> Vec<f64> {
        let weight = |i: usize| {
            if sides[i].priority {
                self.p.priority_weight.max(f64::MIN_POSITIVE)
            } else {
                1.0
            }
        };
        let shares = |lambda: f64| -> Vec<f64> {
            members
                .iter()
                .map(|&i| (weight(i) * lambda).clamp(MIN_CHARGING_A, ceilings[i]))
                .collect()
        };
        let fits = |alloc: &[f64]| {
            (0..3).all(|k| {
                let used: f64 = members
                    .iter()
                    .zip(alloc)
                    .filter(|(i, _)| sides[**i].phases[k])
                    .map(|(_, a)| a.floor())
                    .sum();
                used <= cap[k] + 1e-9
            })
        };
        let (mut lo, mut hi) = (0.0, 64.0);
        for _ in 0..40 {
            let mid = (lo + hi) / 2.0;
            if fits(&shares(mid)) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        shares(lo).into_iter().map(f64::floor).collect()
    }

    /// Whether 6 A for each member fits every phase.
    fn minimum_fits(members: &[usize], sides: &[Side], cap: [f64; 3]) -> bool {
        (0..3).all(|k| {
            let n = members.iter().filter(|i| sides[**i].phases[k]).count();
            n as f64 * MIN_CHARGING_A <= cap[k] + 1e-9
        })
    }

    fn share_out(&mut self, now: f64, phases_a: [f64; 3], sides: &[Side]) {
        let mut cap = [self.p.max_charging_current_a; 3];
        for (k, c) in cap.iter_mut().enumerate() {
            let charging: f64 = sides.iter().filter(|s| s.phases[k]).map(|s| s.current_a).sum();
            *c -= (phases_a[k] - charging).max(0.0);
        }
        let held = |t: &Track| t.queued_since.is_some_and(|q| now - q >= self.p.hold_s);
        let mut members: Vec<usize> = (0..sides.len())
            .filter(|&i| {
                let t = &self.tracks[i];
                sides[i].state.connected() && t.skipped_until.is_none() && (t.running() || held(t))
            })
            .collect();
        // The same below the red border: past it, the maximum current is the hard limit.
        let mut red = cap;
        for c in &mut red {
            *c += self.p.max_current_a - self.p.max_charging_current_a;
        }
        while !Self::minimum_fits(&members, sides, cap) {
            let running: Vec<Track> = (0..sides.len())
                .map(|i| {
                    let mut t = self.tracks[i].clone();
                    if !members.contains(&i) {
                        t.setpoint.limit_a = 0.0;
                    }
                    t
                })
                .collect();
            let out = next_to_stop(&running, sides, &self.p)
                .or_else(|| {
                    members
                        .iter()
                        .copied()
                        .filter(|&i| !self.tracks[i].running())
                        .max_by(|&i, &j| {
                            let q = |k: usize| self.tracks[k].queued_since.unwrap_or(0.0);
                            q(i).total_cmp(&q(j)).then(i.cmp(&j))
                        })
                })
                .or_else(|| {
                    if Self::minimum_fits(&members, sides, red) {
                        return None;
                    }
                    let i = next_to_force_stop(&running, sides)?;
                    tracing::warn!(side = i, "above the maximum current with no session past its guaranteed charge: stopping one short of it");
                    Some(i)
                });
            let Some(out) = out else { break };
            members.retain(|&i| i != out);
            if self.tracks[out].running() {
                self.tracks[out].setpoint = Setpoint::paused(Reason::Stopped);
                self.tracks[out].queued_since = Some(now);
            }
        }
        let ceilings: Vec<f64> = (0..sides.len()).map(|i| self.ceiling(i, &sides[i], now)).collect();
        let alloc = self.water_fill(&members, sides, &ceilings, cap);
        for (&i, a) in members.iter().zip(alloc) {
            let side = &sides[i];
            let t = &mut self.tracks[i];
            let s = &mut self.share[i];
            let before = t.setpoint.limit_a;
            let limit = if !t.running() {
                t.granted_at = Some(now);
                t.queued_since = None;
                s.last_raise = Some(now);
                a
            } else if a < before {
                a
            } else if a - before >= RAISE_STEP_A && s.last_raise.is_none_or(|r| now - r >= self.p.settle_s) {
                s.last_raise = Some(now);
                s.underdraw_since = None;
                a
            } else {
                before
            };
            let reason = if limit >= side.rated_a {
                Reason::Granted
            } else {
                Reason::Reduced
            };
            t.setpoint = Setpoint {
                limit_a: limit,
                reason,
                queue: 0,
            };
        }
    }
}

impl Strategy for FairShare {
    fn decide(&mut self, now: f64, phases_a: [f64; 3], sides: &[Side]) -> Decision {
        observe(&mut self.tracks, now, sides, &self.p);
        self.follow_draw(now, sides);
        let measured_a = max_phase(phases_a);
        self.zone = if self.p.load_control {
            Zone::of(self.zone, measured_a, &self.p)
        } else {
            Zone::Green
        };
        if switched_off(&mut self.tracks, sides, now, &self.p) {
            // The switches decided.
        } else {
            self.share_out(now, phases_a, sides);
        }
        decision(self.zone, phases_a, &mut self.tracks, sides, &self.p)
    }

    fn params(&self) -> &Params {
        &self.p
    }

    fn set_params(&mut self, p: Params) {
        self.p = p;
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::SideState;
    use super::*;

    fn side(state: SideState, current_a: f64) -> Side {
        Side {
            state,
            rated_a: 32.0,
            phases: [true; 3],
            priority: false,
            session_ah: 0.0,
            current_a,
        }
    }

    fn params() -> Params {
        Params {
            max_current_a: 100.0,
            max_charging_current_a: 90.0,
            hold_s: 0.0,
            ..Params::default()
        }
    }

    fn limits(d: &Decision) -> Vec<f64> {
        d.setpoints.iter().map(|s| s.limit_a).collect()
    }

    #[test]
    fn the_current_left_is_shared_equally_and_priority_weighs_double() {
        let mut c = FairShare::new(params());
        let mut sides = vec![side(SideState::Waiting, 0.0); 3];
        // 30 A of other load: 60 A left for charging.
        let d = c.decide(0.0, [30.0; 3], &sides);
        assert_eq!(limits(&d), vec![20.0; 3]);
        let mut c = FairShare::new(params());
        sides[2].priority = true;
        let d = c.decide(0.0, [30.0; 3], &sides);
        assert_eq!(limits(&d), vec![15.0, 15.0, 30.0]);
    }

    #[test]
    fn the_share_counts_only_the_load_that_is_not_charging_and_respects_ratings() {
        let mut c = FairShare::new(params());
        let sides = vec![side(SideState::Charging, 20.0), side(SideState::Waiting, 0.0)];
        // 70 A measured, 20 A of it the session: 50 A other load, 40 A to share.
        let d = c.decide(0.0, [70.0; 3], &sides);
        assert_eq!(limits(&d), vec![20.0, 20.0]);
        let mut c = FairShare::new(params());
        let d = c.decide(0.0, [0.0; 3], &sides[1..]);
        assert_eq!(limits(&d), vec![32.0], "never above the rating");
        assert_eq!(d.setpoints[0].reason, Reason::Granted);
    }

    #[test]
    fn a_single_phase_side_shares_only_its_phase() {
        let mut c = FairShare::new(params());
        let mut sides = vec![side(SideState::Waiting, 0.0), side(SideState::Waiting, 0.0)];
        sides[1].phases = [true, false, false];
        sides[1].rated_a = 16.0;
        // L1 is loaded by 60 A of other load, L2 and L3 by 20 A: L1 binds.
        let d = c.decide(0.0, [60.0, 20.0, 20.0], &sides);
        assert_eq!(limits(&d), vec![15.0, 15.0]);
    }

    #[test]
    fn when_six_amps_each_do_not_fit_the_manuals_stop_order_applies() {
        let mut c = FairShare::new(params());
        let mut sides = vec![side(SideState::Charging, 10.0), side(SideState::Charging, 10.0)];
        sides[0].session_ah = 40.0;
        sides[1].session_ah = 40.0;
        c.decide(0.0, [30.0; 3], &sides[..1]);
        c.decide(1.0, [40.0; 3], &sides);
        // 85 A of other load: 5 A left. Side 0 connected longest and had its 32 Ah: stopped
        // first; 6 A still do not fit and side 1 had its 32 Ah too.
        let d = c.decide(2.0, [105.0; 3], &sides);
        assert_eq!(d.setpoints[0].reason, Reason::Stopped);
        assert_eq!(d.setpoints[0].queue, 1, "a stopped session queues again");
        assert_eq!(limits(&d), vec![0.0, 0.0]);
        let mut c = FairShare::new(params());
        let sides = vec![
            side(SideState::Charging, 10.0),
            Side {
                session_ah: 10.0,
                ..side(SideState::Charging, 10.0)
            },
        ];
        let d = c.decide(0.0, [105.0; 3], &sides);
        assert_eq!(
            limits(&d),
            vec![6.0, 6.0],
            "no one with less than the guaranteed charge is stopped"
        );
    }

    #[test]
    fn a_vehicle_that_draws_less_leaves_the_rest_to_the_others_after_the_settle_time() {
        let mut c = FairShare::new(params());
        let mut sides = vec![side(SideState::Waiting, 0.0), side(SideState::Waiting, 0.0)];
        // 50 A other load: 40 A to share, 20 each.
        assert_eq!(limits(&c.decide(0.0, [50.0; 3], &sides)), vec![20.0, 20.0]);
        sides[0] = side(SideState::Charging, 10.0); // its vehicle takes 10 A
        sides[1] = side(SideState::Charging, 20.0);
        assert_eq!(limits(&c.decide(11.0, [80.0; 3], &sides)), vec![20.0, 20.0]);
        let d = c.decide(22.0, [80.0; 3], &sides);
        assert_eq!(limits(&d), vec![12.0, 28.0], "side 0 capped at its draw + 2 A");
    }

    #[test]
    fn limits_go_down_at_once_and_up_once_per_settle_time() {
        let mut c = FairShare::new(params());
        let mut sides = vec![side(SideState::Waiting, 0.0)];
        assert_eq!(limits(&c.decide(0.0, [70.0; 3], &sides)), vec![20.0]);
        sides[0] = side(SideState::Charging, 20.0);
        assert_eq!(limits(&c.decide(1.0, [105.0; 3], &sides)), vec![6.0], "down at once");
        sides[0].current_a = 6.0;
        assert_eq!(
            limits(&c.decide(2.0, [56.0; 3], &sides)),
            vec![6.0],
            "up waits for the settle time"
        );
        assert_eq!(limits(&c.decide(10.0, [56.0; 3], &sides)), vec![32.0]);
    }
}
