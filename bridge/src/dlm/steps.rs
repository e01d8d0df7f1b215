//! The Green'Up steps (../shared/reference/devices.md section 5; docs/load-management.md).
//!
//! Green: the request that may be granted (held long enough, priority first, then the one
//! waiting longest) is granted at the highest step that stays under the green/yellow border;
//! with no request, the session reduced first is raised one step, if that stays green. Yellow:
//! nothing new; while a request waits, one running session is reduced one step per decision.
//! Red: running sessions are reduced one step at a time (non-priority before priority, the
//! highest step first, connected longest first) until the load predicted from the written limits
//! is under the maximum; when all are at the second step, the non-priority session connected
//! longest that received the guaranteed charge is stopped (if none has, the maximum current is
//! the hard limit: [`next_to_force_stop`]). Grants and raises wait `settle_s` after the previous
//! change, so that the meter has seen it.

use super::model::{decision, switched_off};
use super::model::{
    grant_order, headroom, max_phase, next_to_force_stop, next_to_stop, observe, predicted, Decision, Params, Reason,
    Setpoint, Side, Strategy, Track, Zone,
};

/// The step a side is held at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
enum Level {
    #[default]
    Paused,
    Second,
    First,
    Full,
}

impl Level {
    fn down(self) -> Level {
        match self {
            Level::Full => Level::First,
            _ => Level::Second,
        }
    }
    fn up(self) -> Level {
        match self {
            Level::Second => Level::First,
            _ => Level::Full,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct StepTrack {
    level: Level,
    /// When it was first reduced (the first reduced is the first raised).
    reduced_at: Option<f64>,
}

/// The Green'Up steps over the sides it is given.
#[derive(Debug, Clone)]
pub struct Steps {
    p: Params,
    zone: Zone,
    tracks: Vec<Track>,
    steps: Vec<StepTrack>,
    /// When the last change was made (a grant or raise waits `settle_s` after it).
    last_change: Option<f64>,
}

impl Steps {
    pub fn new(p: Params) -> Steps {
        Steps {
            p,
            zone: Zone::Green,
            tracks: Vec::new(),
            steps: Vec::new(),
            last_change: None,
        }
    }

    /// The current a side is held to at `level`, A: a step is never below the IEC 61851
    /// minimum nor above the rating.
    fn limit_of(&self, side: &Side, level: Level) -> f64 {
        match level {
            Level::Paused => 0.0,
            Level::Second => Params::step_limit(side.rated_a, self.p.second_step_pct),
            Level::First => Params::step_limit(side.rated_a, self.p.first_step_pct),
            Level::Full => side.rated_a,
        }
    }

    fn set(&mut self, i: usize, side: &Side, level: Level, reason: Reason) {
        let limit_a = self.limit_of(side, level);
        if let (Some(t), Some(s)) = (self.tracks.get_mut(i), self.steps.get_mut(i)) {
            s.level = level;
            t.setpoint = Setpoint {
                limit_a,
                reason,
                queue: 0,
            };
        }
    }

    /// Follow the common bookkeeping: sides gone, sides found running, sides skipped.
    fn sync_levels(&mut self, sides: &[Side]) {
        self.steps.resize_with(sides.len(), StepTrack::default);
        for (i, side) in sides.iter().enumerate() {
            let running = self.tracks[i].running();
            let level = self.steps[i].level;
            if !side.state.connected() || (!running && level != Level::Paused) {
                self.steps[i] = StepTrack::default();
            } else if running && level == Level::Paused {
                self.steps[i].level = Level::Full;
            }
        }
    }

    /// Reduce one running session one step; the current it frees on its phases, A.
    fn reduce_one(&mut self, now: f64, sides: &[Side]) -> Option<(usize, f64)> {
        let i = (0..sides.len())
            .filter(|&i| self.steps[i].level > Level::Second && self.tracks[i].granted_at.is_none())
            .max_by(|&i, &j| {
                sides[j]
                    .priority
                    .cmp(&sides[i].priority)
                    .then(self.steps[i].level.cmp(&self.steps[j].level))
                    .then(
                        self.tracks[j]
                            .connected_since
                            .unwrap_or(0.0)
                            .total_cmp(&self.tracks[i].connected_since.unwrap_or(0.0)),
                    )
                    .then(j.cmp(&i))
            })?;
        let side = &sides[i];
        let before = self.tracks[i].setpoint.limit_a;
        let level = self.steps[i].level.down();
        self.set(i, side, level, Reason::Reduced);
        self.steps[i].reduced_at.get_or_insert(now);
        let freed = (side.current_a.min(before) - self.tracks[i].setpoint.limit_a).max(0.0);
        Some((i, freed))
    }

    /// Stop the session the manual says to stop (or, when none may be, the one
    /// [`next_to_force_stop`] names); the current it frees, A.
    fn stop_one(&mut self, now: f64, sides: &[Side]) -> Option<(usize, f64)> {
        let i = next_to_stop(&self.tracks, sides, &self.p).or_else(|| {
            let i = next_to_force_stop(&self.tracks, sides)?;
            tracing::warn!(
                side = i,
                "above the maximum current with no session past its guaranteed charge: stopping one short of it"
            );
            Some(i)
        })?;
        let side = &sides[i];
        let freed = side.current_a.min(self.tracks[i].setpoint.limit_a);
        self.set(i, side, Level::Paused, Reason::Stopped);
        self.steps[i].reduced_at = None;
        self.tracks[i].queued_since = Some(now);
        Some((i, freed))
    }

    fn relieve_red(&mut self, now: f64, sides: &[Side], mut load: [f64; 3]) {
        while max_phase(load) > self.p.max_current_a {
            let Some((i, freed)) = self.reduce_one(now, sides).or_else(|| self.stop_one(now, sides)) else {
                // Nothing runs any more.
                return;
            };
            self.last_change = Some(now);
            for (k, on) in sides[i].phases.iter().enumerate() {
                if *on {
                    load[k] -= freed;
                }
            }
        }
    }

    /// Grant the first request at the highest step that stays under the green/yellow border
    /// (a margin below the maximum for the other loads to move in), or make room for it.
    fn grant_or_make_room(&mut self, now: f64, sides: &[Side], load: [f64; 3], first: usize) {
        let side = &sides[first];
        let room = headroom(load, side, self.p.max_charging_current_a);
        let fits = [Level::Full, Level::First, Level::Second]
            .into_iter()
            .find(|l| self.limit_of(side, *l) <= room);
        match fits {
            Some(level) => {
                let reason = if level == Level::Full {
                    Reason::Granted
                } else {
                    Reason::Reduced
                };
                self.set(first, side, level, reason);
                if level != Level::Full {
                    self.steps[first].reduced_at = Some(now);
                }
                let t = &mut self.tracks[first];
                t.granted_at = Some(now);
                t.queued_since = None;
                self.last_change = Some(now);
            }
            None => {
                if self.reduce_one(now, sides).is_some() {
                    self.last_change = Some(now);
                }
            }
        }
    }

    /// Raise the session reduced first one step, if it stays green.
    fn raise_one(&mut self, now: f64, sides: &[Side], load: [f64; 3]) {
        let Some(i) = (0..sides.len())
            .filter(|&i| self.tracks[i].running() && self.steps[i].level < Level::Full)
            .filter(|&i| self.steps[i].reduced_at.is_some())
            .min_by(|&i, &j| {
                let at = |k: usize| self.steps[k].reduced_at.unwrap_or(0.0);
                at(i).total_cmp(&at(j)).then(i.cmp(&j))
            })
        else {
            return;
        };
        let side = &sides[i];
        let level = self.steps[i].level.up();
        let more = self.limit_of(side, level) - self.tracks[i].setpoint.limit_a;
        if more >= headroom(load, side, self.p.max_charging_current_a) {
            return;
        }
        if level == Level::Full {
            self.set(i, side, level, Reason::Granted);
            self.steps[i].reduced_at = None;
        } else {
            self.set(i, side, level, Reason::Reduced);
        }
        self.tracks[i].granted_at = None;
        self.last_change = Some(now);
    }
}

impl Strategy for Steps {
    fn decide(&mut self, now: f64, phases_a: [f64; 3], sides: &[Side]) -> Decision {
        observe(&mut self.tracks, now, sides, &self.p);
        self.sync_levels(sides);
        let measured_a = max_phase(phases_a);
        self.zone = if self.p.load_control {
            Zone::of(self.zone, measured_a, &self.p)
        } else {
            Zone::Green
        };
        if switched_off(&mut self.tracks, sides, now, &self.p) {
            // The switches decided.
        } else {
            let load = predicted(phases_a, &self.tracks, sides, now, &self.p);
            let up_allowed = self.last_change.is_none_or(|t| now - t >= self.p.settle_s);
            let waiting = grant_order(&self.tracks, sides, now, &self.p);
            match Zone::of(self.zone, max_phase(load), &self.p) {
                Zone::Red => self.relieve_red(now, sides, load),
                Zone::Yellow if !waiting.is_empty() => {
                    if self.reduce_one(now, sides).is_some() {
                        self.last_change = Some(now);
                    }
                }
                Zone::Yellow => {}
                Zone::Green if !up_allowed => {}
                Zone::Green => match waiting.first() {
                    Some(&first) => self.grant_or_make_room(now, sides, load, first),
                    None => self.raise_one(now, sides, load),
                },
            }
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

    fn side(state: SideState, current_a: f64, session_ah: f64) -> Side {
        Side {
            state,
            rated_a: 32.0,
            phases: [true; 3],
            priority: false,
            session_ah,
            current_a,
        }
    }

    fn params() -> Params {
        Params {
            max_current_a: 100.0,
            max_charging_current_a: 90.0,
            ..Params::default()
        }
    }

    /// The limits of a decision.
    fn limits(d: &Decision) -> Vec<f64> {
        d.setpoints.iter().map(|s| s.limit_a).collect()
    }

    #[test]
    fn a_request_is_granted_after_the_hold_time_only() {
        let mut c = Steps::new(params());
        let sides = vec![side(SideState::Waiting, 0.0, 0.0)];
        let d = c.decide(0.0, [10.0; 3], &sides);
        assert_eq!(
            d.setpoints[0],
            Setpoint {
                limit_a: 0.0,
                reason: Reason::Queued,
                queue: 1
            }
        );
        assert_eq!(limits(&c.decide(59.0, [10.0; 3], &sides)), vec![0.0], "held");
        let d = c.decide(60.0, [10.0; 3], &sides);
        assert_eq!(d.setpoints[0].limit_a, 32.0);
        assert_eq!(d.setpoints[0].reason, Reason::Granted);
        assert_eq!(d.zone, Zone::Green);
    }

    #[test]
    fn a_grant_takes_the_highest_step_that_stays_under_the_green_border() {
        let mut c = Steps::new(params());
        let sides = vec![side(SideState::Waiting, 0.0, 0.0)];
        c.decide(0.0, [70.0; 3], &sides);
        // 20 A of room below 90 A: the first step (24 A) would be yellow, the second (16 A) is not.
        let d = c.decide(60.0, [70.0; 3], &sides);
        assert_eq!(d.setpoints[0].limit_a, 16.0);
        assert_eq!(d.setpoints[0].reason, Reason::Reduced);
        let mut c = Steps::new(params());
        c.decide(0.0, [80.0; 3], &sides);
        assert_eq!(limits(&c.decide(60.0, [80.0; 3], &sides)), vec![0.0], "no room: queued");
    }

    #[test]
    fn red_reduces_step_by_step_then_stops_the_longest_connected_that_had_its_guaranteed_charge() {
        let mut c = Steps::new(params());
        // Three sessions that started on their own: 3 x 32 + 30 = 126 A.
        let mut sides = vec![
            side(SideState::Charging, 32.0, 40.0),
            side(SideState::Charging, 32.0, 10.0),
            side(SideState::Charging, 32.0, 40.0),
        ];
        c.decide(0.0, [50.0; 3], &sides[..1]);
        c.decide(1.0, [80.0; 3], &sides[..2]);
        let d = c.decide(2.0, [126.0; 3], &sides);
        assert_eq!(d.zone, Zone::Red);
        // 26 A over: 8 A freed per first step (32 -> 24): the longest connected non-priority
        // first, three first steps and one second.
        assert_eq!(limits(&d), vec![16.0, 24.0, 24.0]);
        // Still red after the vehicles followed (the other load rose): all to the second step...
        for s in &mut sides {
            s.current_a = 24.0;
        }
        sides[0].current_a = 16.0;
        let d = c.decide(3.0, [110.0; 3], &sides);
        assert_eq!(limits(&d), vec![16.0, 16.0, 16.0]);
        // ...then a stop: side 0 is the longest connected with its 32 Ah.
        for s in &mut sides {
            s.current_a = 16.0;
        }
        let d = c.decide(4.0, [112.0; 3], &sides);
        assert_eq!(limits(&d), vec![0.0, 16.0, 16.0]);
        assert_eq!(d.setpoints[0].reason, Reason::Stopped);
        // Side 1 has not had its 32 Ah: it is never stopped, side 2 is.
        sides[0].current_a = 0.0;
        sides[0].state = SideState::Waiting;
        let d = c.decide(5.0, [115.0; 3], &sides);
        assert_eq!(limits(&d), vec![0.0, 16.0, 0.0]);
        sides[2].current_a = 0.0;
        sides[2].state = SideState::Waiting;
        // Still red and no one left that had its guaranteed charge: the maximum current is the
        // hard limit, side 1 is stopped short of it.
        let d = c.decide(6.0, [120.0; 3], &sides);
        assert_eq!(limits(&d), vec![0.0, 0.0, 0.0]);
        assert_eq!(d.setpoints[1].reason, Reason::Stopped);
    }

    #[test]
    fn a_stopped_session_still_ramping_down_is_not_taken_for_a_new_one() {
        let mut c = Steps::new(params());
        let mut sides = vec![
            side(SideState::Charging, 16.0, 40.0),
            side(SideState::Charging, 16.0, 10.0),
        ];
        c.decide(0.0, [50.0; 3], &sides[..1]);
        c.decide(1.0, [50.0; 3], &sides);
        c.decide(2.0, [150.0; 3], &sides);
        let d = c.decide(3.0, [130.0; 3], &sides);
        assert_eq!(d.setpoints[0].reason, Reason::Stopped);
        // The vehicle is still coming down from 16 A: the side stays stopped, and queues once
        // it waits.
        sides[0].current_a = 8.0;
        let d = c.decide(4.0, [90.0; 3], &sides);
        assert_eq!(d.setpoints[0], Setpoint::paused(Reason::Stopped));
        sides[0] = side(SideState::Waiting, 0.0, 40.0);
        let d = c.decide(5.0, [80.0; 3], &sides);
        assert_eq!((d.setpoints[0].limit_a, d.setpoints[0].queue), (0.0, 1));
    }

    #[test]
    fn a_priority_session_is_reduced_last_and_never_stopped() {
        let mut c = Steps::new(params());
        let mut sides = vec![
            side(SideState::Charging, 32.0, 50.0),
            side(SideState::Charging, 32.0, 50.0),
        ];
        sides[0].priority = true;
        let d = c.decide(0.0, [105.0; 3], &sides);
        assert_eq!(limits(&d), vec![32.0, 24.0], "the non-priority side first");
        let d = c.decide(1.0, [140.0; 3], &sides);
        assert_eq!(limits(&d), vec![16.0, 0.0]);
    }

    #[test]
    fn yellow_reduces_only_while_a_request_waits() {
        let mut c = Steps::new(params());
        let mut sides = vec![
            side(SideState::Charging, 32.0, 0.0),
            side(SideState::Available, 0.0, 0.0),
        ];
        let d = c.decide(0.0, [95.0; 3], &sides);
        assert_eq!((d.zone, limits(&d)), (Zone::Yellow, vec![32.0, 0.0]));
        sides[1].state = SideState::Waiting;
        c.decide(1.0, [95.0; 3], &sides);
        let d = c.decide(61.0, [95.0; 3], &sides);
        assert_eq!(limits(&d), vec![24.0, 0.0], "one step for the waiting request");
        let d = c.decide(62.0, [95.0; 3], &sides);
        assert_eq!(limits(&d), vec![24.0, 0.0], "green as predicted, but settling");
        // After the settle time: still no room for 16 A below 90 A, one more step.
        let d = c.decide(71.0, [95.0; 3], &sides);
        assert_eq!(limits(&d), vec![16.0, 0.0]);
        // The load came down: the request gets what stays under the green border.
        sides[0].current_a = 16.0;
        let d = c.decide(81.0, [70.0; 3], &sides);
        assert_eq!(limits(&d), vec![16.0, 16.0]);
        assert_eq!(d.setpoints[1].reason, Reason::Reduced);
    }

    #[test]
    fn going_down_the_first_reduced_is_raised_first_one_step_per_settle_time() {
        let mut c = Steps::new(params());
        let mut sides = vec![
            side(SideState::Charging, 32.0, 0.0),
            side(SideState::Charging, 32.0, 0.0),
        ];
        c.decide(0.0, [10.0; 3], &sides[..1]);
        let d = c.decide(1.0, [110.0; 3], &sides);
        assert_eq!(limits(&d), vec![24.0, 24.0]);
        for s in &mut sides {
            s.current_a = 24.0;
        }
        let d = c.decide(2.0, [60.0; 3], &sides);
        assert_eq!(limits(&d), vec![24.0, 24.0], "settling after the reduction");
        let d = c.decide(11.0, [60.0; 3], &sides);
        assert_eq!(limits(&d), vec![32.0, 24.0], "side 0 was reduced first");
        let d = c.decide(15.0, [60.0; 3], &sides);
        assert_eq!(limits(&d), vec![32.0, 24.0], "settling");
        sides[0].current_a = 32.0;
        let d = c.decide(21.0, [68.0; 3], &sides);
        assert_eq!(limits(&d), vec![32.0, 32.0]);
        assert_eq!(d.setpoints[1].reason, Reason::Granted);
    }

    #[test]
    fn a_granted_side_that_does_not_start_is_skipped_then_queued_again() {
        let p = Params {
            hold_s: 0.0,
            ..params()
        };
        let mut c = Steps::new(p);
        let sides = vec![side(SideState::Waiting, 0.0, 0.0), side(SideState::Available, 0.0, 0.0)];
        let d = c.decide(0.0, [10.0; 3], &sides);
        assert_eq!(limits(&d), vec![32.0, 0.0]);
        let d = c.decide(89.0, [10.0; 3], &sides);
        assert_eq!(d.setpoints[0].reason, Reason::Granted);
        let d = c.decide(90.0, [10.0; 3], &sides);
        assert_eq!(d.setpoints[0], Setpoint::paused(Reason::Skipped));
        let d = c.decide(389.0, [10.0; 3], &sides);
        assert_eq!(d.setpoints[0].reason, Reason::Skipped);
        let d = c.decide(390.0, [10.0; 3], &sides);
        assert_eq!(
            d.setpoints[0].reason,
            Reason::Granted,
            "queued and granted again after the skip time"
        );
        assert_eq!(d.setpoints[0].limit_a, 32.0);
    }

    #[test]
    fn priority_requests_are_granted_first_then_the_one_waiting_longest() {
        let p = Params {
            hold_s: 0.0,
            settle_s: 0.0,
            ..params()
        };
        let mut c = Steps::new(p);
        let mut sides = vec![
            side(SideState::Waiting, 0.0, 0.0),
            side(SideState::Available, 0.0, 0.0),
            side(SideState::Available, 0.0, 0.0),
        ];
        c.set_params(Params {
            control_logic: false,
            ..c.params().clone()
        });
        c.decide(0.0, [10.0; 3], &sides);
        sides[1].state = SideState::Waiting;
        c.decide(1.0, [10.0; 3], &sides);
        sides[2].state = SideState::Waiting;
        sides[2].priority = true;
        let d = c.decide(2.0, [10.0; 3], &sides);
        assert_eq!(limits(&d), vec![0.0; 3], "control logic off grants nothing");
        assert_eq!(d.setpoints[0].reason, Reason::Manual);
        c.set_params(Params {
            control_logic: true,
            ..c.params().clone()
        });
        let mut order = Vec::new();
        for t in 3..6 {
            let d = c.decide(f64::from(t), [10.0; 3], &sides);
            for (i, (s, sp)) in sides.iter_mut().zip(&d.setpoints).enumerate() {
                if sp.limit_a > 0.0 && s.state == SideState::Waiting {
                    order.push(i);
                    s.state = SideState::Charging;
                    s.current_a = sp.limit_a;
                }
            }
        }
        assert_eq!(order, vec![2, 0, 1], "priority first, then the one waiting longest");
        assert_eq!(limits(&c.decide(6.0, [10.0; 3], &sides)), vec![32.0; 3]);
    }

    #[test]
    fn load_control_off_grants_every_session_its_rated_current() {
        let p = Params {
            load_control: false,
            ..params()
        };
        let mut c = Steps::new(p);
        let sides = vec![side(SideState::Waiting, 0.0, 0.0), side(SideState::Charging, 32.0, 0.0)];
        let d = c.decide(0.0, [500.0; 3], &sides);
        assert_eq!(d.zone, Zone::Green);
        assert_eq!(limits(&d), vec![32.0, 32.0]);
        assert!(d.setpoints.iter().all(|s| s.reason == Reason::Unlimited));
    }

    #[test]
    fn steps_never_go_below_six_amps() {
        let c = Steps::new(Params {
            second_step_pct: 10.0,
            ..params()
        });
        let s = Side {
            rated_a: 16.0,
            ..side(SideState::Charging, 16.0, 0.0)
        };
        assert_eq!(c.limit_of(&s, Level::Second), 6.0);
        assert_eq!(c.limit_of(&s, Level::First), 12.0);
    }
}
