//! Automatic transfer switch controller (mains = source I, genset = source II): availability
//! windows with hysteresis, the full transfer sequence with its timers (1FT, 2ST, 2AT, dead
//! band, 1RT, 2CT), genset start output and FAIL START, modes, tests and Modbus commands.

use super::{not_for_this_device, not_writable, DeviceModel, Emit, Env, Refusal, Supply};
use crate::events::Event;
use crate::rng::{SimRng, Wander};
use busbar_core::units::Unit;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AtsParams {
    #[serde(default = "d_230")]
    pub nominal_voltage_v: f64,
    #[serde(default = "d_50")]
    pub nominal_frequency_hz: f64,
    /// Source I failure timer.
    #[serde(default = "d_3")]
    pub t_1ft_s: f64,
    /// Genset start timeout (FAIL START after it).
    #[serde(default = "d_30")]
    pub t_2st_s: f64,
    /// Source II stabilisation.
    #[serde(default = "d_5")]
    pub t_2at_s: f64,
    /// Dead band held in position 0.
    #[serde(default = "d_3")]
    pub t_dbt_s: f64,
    /// Source I return timer.
    #[serde(default = "d_180")]
    pub t_1rt_s: f64,
    /// Genset cool-down.
    #[serde(default = "d_180")]
    pub t_2ct_s: f64,
    /// Time the genset needs from start order to rated voltage.
    #[serde(default = "d_8")]
    pub genset_start_s: f64,
    /// Time the switch takes to move between two positions.
    #[serde(default = "d_op")]
    pub operation_s: f64,
    /// Initial mode: auto, manual, remote, inhibit.
    #[serde(default = "d_auto")]
    pub mode: String,
}

fn d_230() -> f64 {
    230.0
}
fn d_50() -> f64 {
    50.0
}
fn d_3() -> f64 {
    3.0
}
fn d_5() -> f64 {
    5.0
}
fn d_8() -> f64 {
    8.0
}
fn d_30() -> f64 {
    30.0
}
fn d_180() -> f64 {
    180.0
}
fn d_op() -> f64 {
    0.3
}
fn d_auto() -> String {
    "auto".into()
}

/// Switch positions as the ATyS map encodes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    Zero,
    One,
    Two,
}

impl Position {
    fn code(self) -> f64 {
        match self {
            Position::Zero => 1.0,
            Position::One => 2.0,
            Position::Two => 3.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Manual,
    Auto,
    Remote,
    Inhibit,
}

impl Mode {
    fn code(self) -> f64 {
        match self {
            Mode::Manual => 0.0,
            Mode::Auto => 16.0,
            Mode::Remote => 32.0,
            Mode::Inhibit => 64.0,
        }
    }
    fn parse(s: &str) -> Option<Mode> {
        Some(match s {
            "manual" => Mode::Manual,
            "auto" => Mode::Auto,
            "remote" => Mode::Remote,
            "inhibit" => Mode::Inhibit,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Test {
    None,
    OffLoad,
    OnLoad,
}

/// A source's availability window with hysteresis (percent of nominal).
#[derive(Debug, Clone)]
struct SourceWatch {
    available: bool,
}

impl SourceWatch {
    fn update(&mut self, v: f64, f: f64, vn: f64, fnom: f64) -> bool {
        let (vr, fr) = (100.0 * v / vn, 100.0 * f / fnom);
        if self.available {
            // Leaves the window at 85/115 % V, 95/105 % F.
            if !(85.0..=115.0).contains(&vr) || !(95.0..=105.0).contains(&fr) {
                self.available = false;
            }
        } else if (95.0..=110.0).contains(&vr) && (97.0..=103.0).contains(&fr) {
            // Comes back only inside the hysteresis window 95/110 % V, 97/103 % F.
            self.available = true;
        }
        self.available
    }
}

pub struct Ats {
    p: AtsParams,
    mode: Mode,
    position: Position,
    moving: Option<(Position, f64)>,
    zero_since: f64,
    target_remote: Option<Position>,
    test: Test,
    ended_test: Test,
    // Sources.
    mains_voltage: f64,
    genset_broken: bool,
    genset_started_for: f64,
    s1_watch: SourceWatch,
    s2_watch: SourceWatch,
    s1: (f64, f64),
    s2: (f64, f64),
    noise: Wander,
    // Timers.
    t_s1_bad: f64,
    t_s1_good: f64,
    t_start_wait: f64,
    t_s2_good: f64,
    cooldown_left: f64,
    start_output: bool,
    fail_start: bool,
    last_command: f64,
    visited_two: bool,
    // Counters.
    cycles: f64,
    to0: f64,
    to1: f64,
    to2: f64,
    auto_transfers: f64,
    remote_transfers: f64,
    engine_starts: f64,
    run_s: f64,
    on_load_s: f64,
    s1_supply_s: f64,
    s2_supply_s: f64,
    moved_by_remote: bool,
    /// Simulated time of the last step (for the dead band timer display).
    now_hint: f64,
}

impl Ats {
    pub fn new(p: AtsParams) -> Ats {
        let mode = Mode::parse(&p.mode).unwrap_or(Mode::Auto);
        let vn = p.nominal_voltage_v;
        Ats {
            mode,
            position: Position::One,
            moving: None,
            zero_since: 0.0,
            target_remote: None,
            test: Test::None,
            ended_test: Test::None,
            mains_voltage: vn,
            genset_broken: false,
            genset_started_for: 0.0,
            s1_watch: SourceWatch { available: true },
            s2_watch: SourceWatch { available: false },
            s1: (vn, p.nominal_frequency_hz),
            s2: (0.0, 0.0),
            noise: Wander::new(0.004, 20.0),
            t_s1_bad: 0.0,
            t_s1_good: 1e9,
            t_start_wait: 0.0,
            t_s2_good: 0.0,
            cooldown_left: 0.0,
            start_output: false,
            fail_start: false,
            last_command: 0.0,
            visited_two: false,
            cycles: 0.0,
            to0: 0.0,
            to1: 0.0,
            to2: 0.0,
            auto_transfers: 0.0,
            remote_transfers: 0.0,
            engine_starts: 0.0,
            run_s: 0.0,
            on_load_s: 0.0,
            s1_supply_s: 0.0,
            s2_supply_s: 0.0,
            moved_by_remote: false,
            now_hint: 0.0,
            p,
        }
    }

    pub fn position(&self) -> Position {
        self.position
    }

    fn genset_running(&self) -> bool {
        self.start_output && !self.genset_broken && self.genset_started_for >= self.p.genset_start_s
    }

    /// Where the controller wants the switch, by mode.
    fn wanted(&self) -> Position {
        match self.mode {
            Mode::Manual | Mode::Inhibit => self.moving.map_or(self.position, |m| m.0),
            Mode::Remote => self.target_remote.unwrap_or(self.position),
            Mode::Auto => {
                let s1_ok = self.s1_watch.available;
                let s2_ready = self.s2_watch.available && self.t_s2_good >= self.p.t_2at_s;
                let s1_failed = self.t_s1_bad >= self.p.t_1ft_s;
                if self.test == Test::OnLoad && s2_ready {
                    return Position::Two;
                }
                if s1_failed && s2_ready {
                    return Position::Two;
                }
                match self.position {
                    Position::Two => {
                        if !self.s2_watch.available {
                            if s1_ok {
                                Position::One
                            } else {
                                Position::Zero
                            }
                        } else if s1_ok && self.t_s1_good >= self.p.t_1rt_s && self.test != Test::OnLoad {
                            Position::One
                        } else {
                            Position::Two
                        }
                    }
                    _ if s1_ok => Position::One,
                    // Source I lost and source II not ready: stay where we are (the load is
                    // dead either way) until source II is ready.
                    other => other,
                }
            }
        }
    }

    fn start_move(&mut self, to: Position) {
        self.moving = Some((to, self.p.operation_s));
    }

    fn arrive(&mut self, at: Position, now: f64) {
        let from = self.position;
        self.position = at;
        match at {
            Position::Zero => {
                self.to0 += 1.0;
                self.zero_since = now;
            }
            Position::One => {
                self.to1 += 1.0;
                if self.visited_two {
                    self.cycles += 1.0;
                    self.visited_two = false;
                    // Retransfer done: cool the genset down before removing the start order.
                    if self.mode == Mode::Auto {
                        self.cooldown_left = self.p.t_2ct_s;
                    }
                }
            }
            Position::Two => {
                self.to2 += 1.0;
                self.visited_two = true;
            }
        }
        if at != Position::Zero && from == Position::Zero {
            if self.moved_by_remote {
                self.remote_transfers += 1.0;
            } else {
                self.auto_transfers += 1.0;
            }
        }
    }

    fn active_timer(&self) -> (f64, f64) {
        if self.mode != Mode::Auto {
            return (0.0, 0.0);
        }
        if self.position == Position::Zero && self.moving.is_none() {
            let left = self.p.t_dbt_s - (self.now_hint - self.zero_since);
            if left > 0.0 {
                return (4.0, left);
            }
        }
        if !self.s1_watch.available && self.t_s1_bad < self.p.t_1ft_s {
            return (1.0, self.p.t_1ft_s - self.t_s1_bad);
        }
        if self.start_output && !self.s2_watch.available && !self.fail_start {
            return (2.0, (self.p.t_2st_s - self.t_start_wait).max(0.0));
        }
        if self.s2_watch.available && self.t_s2_good < self.p.t_2at_s && self.position != Position::Two {
            return (3.0, self.p.t_2at_s - self.t_s2_good);
        }
        if self.position == Position::Two && self.s1_watch.available && self.t_s1_good < self.p.t_1rt_s {
            return (5.0, self.p.t_1rt_s - self.t_s1_good);
        }
        if self.cooldown_left > 0.0 {
            return (6.0, self.cooldown_left);
        }
        (0.0, 0.0)
    }
}

impl DeviceModel for Ats {
    fn step(&mut self, dt: f64, env: &Env, rng: &mut SimRng) {
        let now = env.sim_time_s;
        self.now_hint = now;
        let vn = self.p.nominal_voltage_v;
        let fnom = self.p.nominal_frequency_hz;
        let n = self.noise.step(dt, rng);
        // Source I follows the grid (events set its voltage).
        self.s1 = if self.mains_voltage > 1.0 {
            (self.mains_voltage * (1.0 + n), fnom + 10.0 * n)
        } else {
            (0.0, 0.0)
        };
        // Source II: the genset runs up after its start order.
        if self.start_output && !self.genset_broken {
            self.genset_started_for += dt;
        } else if !self.start_output {
            self.genset_started_for = 0.0;
        }
        self.s2 = if self.genset_running() {
            (vn * (1.0 - n), fnom - 5.0 * n)
        } else {
            (0.0, 0.0)
        };
        let s1_ok = self.s1_watch.update(self.s1.0, self.s1.1, vn, fnom);
        let s2_ok = self.s2_watch.update(self.s2.0, self.s2.1, vn, fnom);
        if s1_ok {
            self.t_s1_bad = 0.0;
            self.t_s1_good += dt;
        } else {
            self.t_s1_bad += dt;
            self.t_s1_good = 0.0;
        }
        self.t_s2_good = if s2_ok { self.t_s2_good + dt } else { 0.0 };

        // Genset start order (auto mode): source I failed for 1FT, a test, on II, cool-down.
        if self.mode == Mode::Auto || self.mode == Mode::Remote {
            let need = (self.t_s1_bad >= self.p.t_1ft_s)
                || self.test != Test::None
                || self.position == Position::Two
                // Still on the way back from II (dead band): the genset keeps running.
                || (self.visited_two && self.position == Position::Zero)
                || self.target_remote == Some(Position::Two);
            if self.cooldown_left > 0.0 {
                self.cooldown_left = (self.cooldown_left - dt).max(0.0);
            }
            let want = need || self.cooldown_left > 0.0;
            if want && !self.start_output {
                self.engine_starts += 1.0;
                self.t_start_wait = 0.0;
            }
            self.start_output = want;
        }
        if self.start_output && !s2_ok {
            self.t_start_wait += dt;
            if self.t_start_wait > self.p.t_2st_s {
                self.fail_start = true;
            }
        }

        // The switch.
        if let Some((to, left)) = self.moving {
            let left = left - dt;
            if left <= 0.0 {
                self.moving = None;
                self.arrive(to, now);
            } else {
                self.moving = Some((to, left));
            }
        } else if !matches!(self.mode, Mode::Manual | Mode::Inhibit) {
            let want = self.wanted();
            if want != self.position {
                let target_live = match want {
                    Position::One => s1_ok,
                    Position::Two => s2_ok,
                    Position::Zero => true,
                };
                if self.position != Position::Zero {
                    // Always through position 0.
                    self.moved_by_remote = self.mode == Mode::Remote;
                    self.start_move(Position::Zero);
                } else if target_live && now - self.zero_since >= self.p.t_dbt_s {
                    self.moved_by_remote = self.mode == Mode::Remote;
                    self.start_move(want);
                }
            }
        }

        // Counters.
        if self.genset_running() {
            self.run_s += dt;
            if self.position == Position::Two {
                self.on_load_s += dt;
            }
        }
        match self.position {
            Position::One if s1_ok || self.s1.0 > 1.0 => self.s1_supply_s += dt,
            Position::Two if self.genset_running() => self.s2_supply_s += dt,
            _ => {}
        }
    }

    fn contribute(&self, index: usize, env: &mut Env) {
        let supply = match self.position {
            Position::One if self.s1.0 > 1.0 => Supply {
                voltage: self.s1.0,
                frequency: self.s1.1,
            },
            Position::Two if self.s2.0 > 1.0 => Supply {
                voltage: self.s2.0,
                frequency: self.s2.1,
            },
            _ => Supply::DEAD,
        };
        if let Some(slot) = env.supplies.get_mut(index) {
            *slot = Some(supply);
        }
    }

    fn emit(&self, out: &mut Emit<'_>) {
        let state = |watch: &SourceWatch, v: f64| {
            if watch.available {
                2.0
            } else if v > 0.5 * self.p.nominal_voltage_v {
                1.0
            } else {
                0.0
            }
        };
        out("network_type", 2.0, Unit::None);
        out("mode", self.mode.code(), Unit::None);
        out("position", self.position.code(), Unit::None);
        out("genset_relay_1", 0.0, Unit::None);
        out("genset_relay_2", f64::from(u8::from(self.start_output)), Unit::None);
        out("priority_source", 1.0, Unit::None);
        out("source1_state", state(&self.s1_watch, self.s1.0), Unit::None);
        out("source2_state", state(&self.s2_watch, self.s2.0), Unit::None);
        let test_bits = match (self.test, self.ended_test) {
            (Test::OffLoad, _) => 1.0,
            (Test::OnLoad, _) => 4.0,
            (Test::None, Test::OffLoad) => 2.0,
            (Test::None, Test::OnLoad) => 8.0,
            _ => 0.0,
        };
        out("test_state", test_bits, Unit::None);
        out("cycle_count", self.cycles, Unit::Count);
        out("source1_voltage", self.s1.0, Unit::Volt);
        out("source1_frequency", self.s1.1, Unit::Hertz);
        out("source2_voltage", self.s2.0, Unit::Volt);
        out("source2_frequency", self.s2.1, Unit::Hertz);
        out("switches_to_0", self.to0, Unit::Count);
        out("switches_to_1", self.to1, Unit::Count);
        out("switches_to_2", self.to2, Unit::Count);
        out("auto_transfers", self.auto_transfers, Unit::Count);
        out("remote_transfers", self.remote_transfers, Unit::Count);
        out("engine_starts", self.engine_starts, Unit::Count);
        out("engine_run_time", self.run_s, Unit::Second);
        out("engine_on_load_time", self.on_load_s, Unit::Second);
        out("source1_supply_time", self.s1_supply_s, Unit::Second);
        out("source2_supply_time", self.s2_supply_s, Unit::Second);
        out("t_1ft", self.p.t_1ft_s, Unit::Second);
        out("t_2st", self.p.t_2st_s, Unit::Second);
        out("t_2at", self.p.t_2at_s, Unit::Second);
        out("t_dbt", self.p.t_dbt_s, Unit::Second);
        out("t_1rt", self.p.t_1rt_s, Unit::Second);
        out("t_2ct", self.p.t_2ct_s, Unit::Second);
        let (timer, left) = self.active_timer();
        out("active_timer", timer, Unit::None);
        out("timer_remaining", left.max(0.0).ceil(), Unit::Second);
        let bit = |b: bool, n: u32| if b { f64::from(1u32 << n) } else { 0.0 };
        let inputs = bit(self.position == Position::One, 0)
            + bit(self.position == Position::Two, 1)
            + bit(self.mode == Mode::Remote, 2)
            + bit(self.target_remote == Some(Position::Two), 3);
        out("inputs", inputs, Unit::None);
        let outputs = bit(matches!(self.moving, Some((Position::One, _))), 0)
            + bit(matches!(self.moving, Some((Position::Two, _))), 1)
            + bit(self.fail_start, 2)
            + bit(self.start_output, 5);
        out("outputs", outputs, Unit::None);
        out("fail_start", f64::from(u8::from(self.fail_start)), Unit::None);
        out("fault_active", f64::from(u8::from(self.fail_start)), Unit::None);
        // Non-essential loads are shed while the genset (source II) supplies the site.
        out(
            "load_shedding",
            f64::from(u8::from(self.position == Position::Two)),
            Unit::None,
        );
        out("command", self.last_command, Unit::None);
    }

    fn write(&mut self, point: &str, value: f64) -> Result<(), Refusal> {
        if point != "command" {
            return Err(not_writable(point));
        }
        let cmd = value.round() as i64;
        if matches!(self.mode, Mode::Manual | Mode::Inhibit) && cmd != 4 && cmd != 8 {
            return Err(format!("command {cmd} refused: the switch is in {:?} mode", self.mode));
        }
        match cmd {
            0 => {}
            1 => {
                if !self.s1_watch.available {
                    return Err("transfer to source I refused: source I is not available".into());
                }
                self.mode = Mode::Remote;
                self.target_remote = Some(Position::One);
            }
            2 => {
                self.mode = Mode::Remote;
                self.target_remote = Some(Position::Zero);
            }
            3 => {
                self.mode = Mode::Remote;
                self.target_remote = Some(Position::Two);
            }
            4 => {
                self.mode = Mode::Auto;
                self.target_remote = None;
            }
            5 => self.test = Test::OffLoad,
            6 => self.test = Test::OnLoad,
            7 => {
                self.ended_test = self.test;
                self.test = Test::None;
            }
            8 => self.fail_start = false,
            other => return Err(format!("unknown command {other}")),
        }
        self.last_command = value.round();
        Ok(())
    }

    fn event(&mut self, event: &Event, _rng: &mut SimRng) -> Result<(), Refusal> {
        match event {
            Event::MainsLost => self.mains_voltage = 0.0,
            Event::MainsRestored => self.mains_voltage = self.p.nominal_voltage_v,
            Event::MainsVoltage { voltage_v } if *voltage_v >= 0.0 && voltage_v.is_finite() => {
                self.mains_voltage = *voltage_v
            }
            Event::GensetFail => self.genset_broken = true,
            Event::GensetRepaired => self.genset_broken = false,
            _ => return Err(not_for_this_device(event)),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> AtsParams {
        serde_json::from_value(serde_json::json!({})).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Step the switch for `secs` of simulated time at 100 ms.
    fn run(ats: &mut Ats, env: &mut Env, rng: &mut SimRng, secs: f64) {
        let steps = (secs / 0.1).round() as usize;
        for _ in 0..steps {
            env.sim_time_s += 0.1;
            ats.step(0.1, env, rng);
        }
    }

    fn time_until(ats: &mut Ats, env: &mut Env, rng: &mut SimRng, cond: impl Fn(&Ats) -> bool) -> f64 {
        let start = env.sim_time_s;
        while !cond(ats) && env.sim_time_s - start < 3600.0 {
            env.sim_time_s += 0.1;
            ats.step(0.1, env, rng);
        }
        env.sim_time_s - start
    }

    #[test]
    fn mains_failure_and_return_follow_the_timers() {
        let mut ats = Ats::new(params());
        let mut env = Env::with_devices(1);
        let mut rng = SimRng::for_device(1, 0);
        run(&mut ats, &mut env, &mut rng, 5.0);
        assert_eq!(ats.position, Position::One);
        ats.event(&Event::MainsLost, &mut rng).unwrap_or_default();
        // 1FT (3 s) before the start order.
        let t_start = time_until(&mut ats, &mut env, &mut rng, |a| a.start_output);
        assert!((t_start - 3.0).abs() < 0.25, "start order after {t_start}");
        // Genset run-up (8 s) + 2AT (5 s), then I -> 0 (0.3 s), dead band (3 s), 0 -> II (0.3 s).
        let t_two = time_until(&mut ats, &mut env, &mut rng, |a| a.position == Position::Two);
        assert!((t_two - 16.6).abs() < 0.5, "on II after {t_two} more");
        assert_eq!(ats.engine_starts, 1.0);
        // Mains back: 1RT (180 s), then through 0 (dead band 3 s) to I.
        ats.event(&Event::MainsRestored, &mut rng).unwrap_or_default();
        let t_zero = time_until(&mut ats, &mut env, &mut rng, |a| a.position == Position::Zero);
        assert!((t_zero - 180.0).abs() < 1.0, "left II after {t_zero}");
        let t_one = time_until(&mut ats, &mut env, &mut rng, |a| a.position == Position::One);
        assert!((t_one - 3.3).abs() < 0.5, "back on I after {t_one}");
        assert_eq!(ats.cycles, 1.0);
        // The genset cools down for 2CT (180 s) before its start order drops.
        let t_cool = time_until(&mut ats, &mut env, &mut rng, |a| !a.start_output);
        assert!((t_cool - 180.0).abs() < 1.0, "cool-down {t_cool}");
    }

    #[test]
    fn fail_start_after_2st() {
        let mut ats = Ats::new(params());
        let mut env = Env::with_devices(1);
        let mut rng = SimRng::for_device(1, 0);
        ats.event(&Event::GensetFail, &mut rng).unwrap_or_default();
        ats.event(&Event::MainsLost, &mut rng).unwrap_or_default();
        let t = time_until(&mut ats, &mut env, &mut rng, |a| a.fail_start);
        assert!((t - 33.0).abs() < 0.5, "FAIL START after {t} (1FT 3 s + 2ST 30 s)");
        assert_ne!(ats.position, Position::Two);
    }

    #[test]
    fn remote_commands_move_the_switch_and_manual_refuses() {
        let mut ats = Ats::new(params());
        let mut env = Env::with_devices(1);
        let mut rng = SimRng::for_device(1, 0);
        run(&mut ats, &mut env, &mut rng, 1.0);
        assert_eq!(ats.write("command", 2.0), Ok(()));
        run(&mut ats, &mut env, &mut rng, 1.0);
        assert_eq!(ats.position, Position::Zero);
        assert_eq!(ats.mode, Mode::Remote);
        assert_eq!(ats.write("command", 4.0), Ok(()));
        run(&mut ats, &mut env, &mut rng, 5.0);
        assert_eq!(ats.position, Position::One, "back to auto returns to source I");
        ats.mode = Mode::Manual;
        assert!(ats.write("command", 3.0).is_err());
        assert!(ats.write("mode", 16.0).is_err());
    }
}
