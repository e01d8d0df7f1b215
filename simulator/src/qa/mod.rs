//! Scenarios as tests (`busbar-sim test`): the simulator plays a scenario to a system under test
//! (SUT), records what the SUT does to the devices, probes what it shows, receives what it
//! announces, and judges the scenario's expectations on the simulated clock. docs/qa.md.

pub mod expect;
pub mod judge;
pub mod probe;
pub mod report;
pub mod sinks;
pub mod smtp;

use crate::runner::{self, RunOptions};
use crate::scenario::{Action, Scenario};
use expect::{Check, Compare, Mode};
use judge::Verdict;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::watch;

/// How to run a test.
#[derive(Debug, Clone)]
pub struct TestOptions {
    pub speed: f64,
    pub seed: Option<u64>,
    /// Replaces the first listener's address.
    pub listen: Option<SocketAddr>,
    /// Run at least this long (needed when every expectation holds "to the end").
    pub duration: Option<Duration>,
}

/// One expectation's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub name: String,
    pub origin: String,
    pub passed: bool,
    /// Simulated second at which it was met or failed.
    pub at_s: f64,
    pub detail: String,
}

/// A test run's result.
#[derive(Debug, Clone)]
pub struct Report {
    pub scenario: String,
    pub file: String,
    pub seed: u64,
    pub speed: f64,
    /// The scenario's parameters as this run used them (name, value).
    pub parameters: Vec<(String, String)>,
    /// Simulated seconds the run lasted.
    pub sim_s: f64,
    pub outcomes: Vec<Outcome>,
    /// (simulated second, what happened): events and faults played, the SUT's writes, probe
    /// values as they changed, notifications received, verdicts.
    pub timeline: Vec<(f64, String)>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.outcomes.iter().all(|o| o.passed)
    }
}

/// The simulated second at which a run ends: the last window's end, or `duration` if later.
pub fn run_end(s: &Scenario, duration: Option<Duration>) -> Result<f64, String> {
    if s.expectations.is_empty() {
        return Err("the scenario has no `expect` entries: nothing to test".into());
    }
    let last = s
        .expectations
        .iter()
        .filter_map(|e| e.end_s())
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
    match (last, duration) {
        (Some(l), Some(d)) => Ok(l.max(d.as_secs_f64())),
        (Some(l), None) => Ok(l),
        (None, Some(d)) => Ok(d.as_secs_f64()),
        (None, None) => Err(
            "every expectation holds to the end of the run: give --duration (or a `within`/`for` to one of them)"
                .into(),
        ),
    }
}

fn action_text(a: &Action) -> String {
    match a {
        Action::Event(e) => format!("event {}", e.name()),
        Action::Fault { fault, duration } => match duration {
            Some(d) => format!(
                "fault {} for {}",
                fault.name(),
                busbar_core::duration::format_duration(*d)
            ),
            None => format!("fault {}", fault.name()),
        },
        Action::ClearFaults => "faults cleared".into(),
    }
}

/// Play `scenario` to the SUT and judge its expectations.
pub async fn run(file: &str, scenario: &Scenario, opts: &TestOptions) -> anyhow::Result<Report> {
    let end = run_end(scenario, opts.duration).map_err(anyhow::Error::msg)?;
    let running = runner::start(
        scenario,
        RunOptions {
            speed: opts.speed,
            seed: opts.seed,
            listen: opts.listen,
            control: None,
            record: true,
            ..RunOptions::default()
        },
    )
    .await?;
    let (activity, seed) = {
        let site = running.site.lock().unwrap_or_else(|p| p.into_inner());
        (site.activity(), site.seed)
    };
    let activity = activity.ok_or_else(|| anyhow::anyhow!("the run records no activity"))?;
    let (stop, stopped) = watch::channel(false);
    let (inboxes, sink_tasks) = sinks::start(&scenario.sinks, activity.clock.clone(), stopped).await?;
    let exps = &scenario.expectations;
    let mut verdicts = vec![Verdict::Pending; exps.len()];
    let mut prober = probe::Prober::default();
    let mut last_words: Vec<Option<String>> = vec![None; exps.len()];
    let mut timeline: Vec<(f64, String)> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut now;
    loop {
        tick.tick().await;
        now = activity.clock.get();
        for (i, e) in exps.iter().enumerate() {
            if verdicts[i] != Verdict::Pending || now < e.start_s {
                continue;
            }
            let w_end = e.end_s().unwrap_or(end);
            let v = match &e.check {
                Check::Polled {
                    device,
                    every,
                    not_faster_than,
                } => judge::polled(
                    &activity.reads(*device, e.start_s, w_end),
                    e.start_s,
                    w_end,
                    now,
                    *every,
                    *not_faster_than,
                ),
                Check::Wrote { device, point, value } => judge::wrote(
                    &activity.writes(e.start_s, w_end),
                    *device,
                    point,
                    *value,
                    e.start_s,
                    w_end,
                    now,
                ),
                Check::NeverWrote { device, point, outside } => judge::never_wrote(
                    &activity.writes(e.start_s, w_end),
                    *device,
                    point.as_deref(),
                    *outside,
                    e.start_s,
                    w_end,
                    now,
                ),
                Check::Probe { probe, compare } => {
                    let seen = prober.read(probe).await;
                    let truth = match compare {
                        Compare::Truth { device, point, .. } => {
                            let site = running.site.lock().unwrap_or_else(|p| p.into_inner());
                            site.truth(*device)
                                .into_iter()
                                .find(|(name, _, _)| name == point)
                                .map(|x| x.1)
                        }
                        _ => None,
                    };
                    let (ok, words) = judge::compare(&seen, compare, truth);
                    if last_words[i].as_deref() != Some(words.as_str()) {
                        timeline.push((now, format!("probe {}: {words}", probe.describe())));
                        last_words[i] = Some(words.clone());
                    }
                    judge::probe(matches!(e.mode, Mode::Within(_)), ok, &words, e.start_s, w_end, now)
                }
                Check::Notified { sink, pattern, none } => {
                    let received = inboxes
                        .get(*sink)
                        .map(|b| b.lock().unwrap_or_else(|p| p.into_inner()).clone())
                        .unwrap_or_default();
                    judge::notified(&received, pattern, *none, e.start_s, w_end, now)
                }
            };
            match &v {
                Verdict::Met { at_s, detail } => println!("  PASS  {} (at {at_s:.1} s): {detail}", e.name),
                Verdict::Failed { at_s, detail } => println!("  FAIL  {} (at {at_s:.1} s): {detail}", e.name),
                Verdict::Pending => {}
            }
            verdicts[i] = v;
        }
        if verdicts.iter().all(|v| *v != Verdict::Pending) || now > end {
            break;
        }
    }
    let _ = stop.send(true);
    for t in sink_tasks {
        let _ = t.await;
    }
    running.stop().await;

    let outcomes: Vec<Outcome> = exps
        .iter()
        .zip(verdicts)
        .map(|(e, v)| {
            let (passed, at_s, detail) = match v {
                Verdict::Met { at_s, detail } => (true, at_s, detail),
                Verdict::Failed { at_s, detail } => (false, at_s, detail),
                Verdict::Pending => (false, now, "the run ended before it was judged".into()),
            };
            Outcome {
                name: e.name.clone(),
                origin: e.origin.clone(),
                passed,
                at_s,
                detail,
            }
        })
        .collect();
    for t in scenario.timeline.iter().filter(|t| t.at.as_secs_f64() <= now) {
        let who = t.device.as_deref().unwrap_or("site");
        timeline.push((t.at.as_secs_f64(), format!("{who}: {}", action_text(&t.action))));
    }
    for w in activity.writes(0.0, now) {
        let device = scenario.devices.get(w.device).map_or("?", |d| d.name.as_str());
        timeline.push((
            w.at_s,
            format!(
                "SUT wrote {device}/{} = {}{}",
                w.point,
                w.value,
                if w.accepted { "" } else { " (refused)" }
            ),
        ));
    }
    for (sink, inbox) in scenario.sinks.iter().zip(&inboxes) {
        for (t, text) in inbox.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            timeline.push((*t, format!("{} received: {text}", sink.name)));
        }
    }
    for o in &outcomes {
        timeline.push((o.at_s, format!("{} {}", if o.passed { "PASS" } else { "FAIL" }, o.name)));
    }
    timeline.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(Report {
        scenario: scenario.name.clone(),
        file: file.to_string(),
        seed,
        speed: opts.speed,
        parameters: scenario
            .parameters
            .iter()
            .map(|p| (p.name.clone(), p.value.clone()))
            .collect(),
        sim_s: now,
        outcomes,
        timeline,
    })
}
