//! Runs a scenario: binds the Modbus listeners and the control API, and drives the site's
//! clock at `speed` times real time (in whole fixed steps, so a seed gives the same registers
//! at the same simulated time whatever the wall-clock jitter).

use crate::control;
use crate::gateway::{Gateway, GatewayLimits};
use crate::scenario::Scenario;
use crate::site::Site;
use anyhow::Context;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How to run a scenario.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Simulated seconds per real second.
    pub speed: f64,
    pub seed: Option<u64>,
    /// Stop after this much simulated time.
    pub duration: Option<Duration>,
    /// Replaces the first listener's address (port 0 = any free port).
    pub listen: Option<SocketAddr>,
    /// Control API address; `None` = no control API.
    pub control: Option<SocketAddr>,
    /// Draw a progress bar on stderr (finite duration, speed above 1).
    pub progress: bool,
    pub limits: GatewayLimits,
    /// Record what clients do to the devices (for a test's expectations).
    pub record: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            speed: 1.0,
            seed: None,
            duration: None,
            listen: None,
            control: None,
            progress: false,
            limits: GatewayLimits::default(),
            record: false,
        }
    }
}

/// The clock's knobs, shared with the control API.
#[derive(Debug)]
pub struct ClockState {
    pub speed: f64,
    pub paused: bool,
    /// Simulated seconds the ticker must still run (steps asked while paused).
    pub pending_s: f64,
}

pub type Clock = Arc<Mutex<ClockState>>;

/// A running simulator.
pub struct Running {
    pub site: Arc<Mutex<Site>>,
    pub clock: Clock,
    /// `(listener name, bound address)`.
    pub gateways: Vec<(String, SocketAddr)>,
    pub control: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    done: watch::Receiver<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// The address of the first (or only) gateway.
    pub fn gateway(&self) -> SocketAddr {
        self.gateways
            .first()
            .map(|g| g.1)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Wait until the duration is reached (never without a duration) or `stop` is called.
    pub async fn finished(&mut self) {
        while !*self.done.borrow() {
            if self.done.changed().await.is_err() {
                return;
            }
        }
    }

    /// Stop every task and wait for them.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Bind everything and start the clock.
pub async fn start(scenario: &Scenario, opts: RunOptions) -> anyhow::Result<Running> {
    let mut site = Site::new(scenario, opts.seed).map_err(anyhow::Error::msg)?;
    if opts.record {
        site.record_activity();
    }
    let site = Arc::new(Mutex::new(site));
    let (shutdown, _) = watch::channel(false);
    let (done_tx, done) = watch::channel(false);
    let mut tasks = Vec::new();
    let mut gateways = Vec::new();
    for (i, l) in scenario.listeners.iter().enumerate() {
        if let Some(line) = &l.rtu {
            let gw = Arc::new(Gateway::new(l.name.clone(), i, site.clone()));
            tasks.push(tokio::spawn(crate::rtu_line::serve(
                line.clone(),
                gw,
                shutdown.subscribe(),
            )));
            gateways.push((l.name.clone(), SocketAddr::from(([0, 0, 0, 0], 0))));
            continue;
        }
        let addr = match (i, opts.listen) {
            (0, Some(a)) => a,
            _ => l.listen,
        };
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("listener `{}`: cannot bind {addr}", l.name))?;
        let bound = listener.local_addr()?;
        let gw = Arc::new(Gateway::new(l.name.clone(), i, site.clone()));
        let stats = Arc::new(busbar_modbus::server::Stats::default());
        tasks.push(tokio::spawn(busbar_modbus::server::serve(
            l.name.clone(),
            gw,
            listener,
            opts.limits,
            stats,
            shutdown.subscribe(),
        )));
        gateways.push((l.name.clone(), bound));
    }
    let clock: Clock = Arc::new(Mutex::new(ClockState {
        speed: opts.speed.max(0.0),
        paused: false,
        pending_s: 0.0,
    }));
    let control = match opts.control {
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("control API: cannot bind {addr}"))?;
            let bound = listener.local_addr()?;
            let app = control::router(site.clone(), clock.clone());
            let mut stop = shutdown.subscribe();
            tasks.push(tokio::spawn(async move {
                let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                    let _ = stop.changed().await;
                });
                if let Err(e) = serve.await {
                    tracing::error!("control API stopped: {e}");
                }
            }));
            Some(bound)
        }
        None => None,
    };
    tasks.push(tokio::spawn(tick(
        site.clone(),
        clock.clone(),
        opts.clone(),
        shutdown.subscribe(),
        done_tx,
    )));
    Ok(Running {
        site,
        clock,
        gateways,
        control,
        shutdown,
        done,
        tasks,
    })
}

async fn tick(
    site: Arc<Mutex<Site>>,
    clock: Clock,
    opts: RunOptions,
    mut shutdown: watch::Receiver<bool>,
    done: watch::Sender<bool>,
) {
    let period = Duration::from_millis(100);
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = Instant::now();
    let mut target = 0.0f64;
    let mut last_progress = Instant::now();
    let end = opts.duration.map(|d| d.as_secs_f64());
    let mut behind_warned = false;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.changed() => break,
        }
        let now = Instant::now();
        let wall = now.duration_since(last).as_secs_f64();
        last = now;
        {
            let mut c = clock.lock().unwrap_or_else(|p| p.into_inner());
            if !c.paused {
                target += wall * c.speed;
            }
            target += c.pending_s;
            c.pending_s = 0.0;
        }
        if let Some(e) = end {
            target = target.min(e);
        }
        // Advance in chunks so that Modbus writes and the control API get the lock in between.
        let started = Instant::now();
        loop {
            let reached = {
                let mut s = site.lock().unwrap_or_else(|p| p.into_inner());
                let chunk_end = (s.sim_time_s() + 100.0 * s.step_s()).min(target);
                s.advance_to(chunk_end);
                let reached = s.sim_time_s() + s.step_s() > target + 1e-9;
                if reached {
                    s.publish();
                }
                reached
            };
            if reached {
                break;
            }
            tokio::task::yield_now().await;
        }
        let took = started.elapsed();
        if took > period * 5 && !behind_warned {
            tracing::warn!(
                "the simulation is slower than asked: {took:?} of work for {period:?} of wall time; lower --speed"
            );
            behind_warned = true;
        }
        let sim = site.lock().map(|s| s.sim_time_s()).unwrap_or(0.0);
        if opts.progress {
            if let Some(e) = end {
                if last_progress.elapsed() > Duration::from_millis(250) || sim >= e {
                    last_progress = Instant::now();
                    progress_bar(sim, e);
                }
            }
        }
        if let Some(e) = end {
            if sim + 1e-6 >= e - site.lock().map(|s| s.step_s()).unwrap_or(0.1) {
                if opts.progress {
                    eprintln!();
                }
                let _ = done.send(true);
                break;
            }
        }
    }
}

fn progress_bar(sim: f64, end: f64) {
    let frac = if end > 0.0 { (sim / end).clamp(0.0, 1.0) } else { 1.0 };
    let width = 40;
    let filled = (frac * width as f64).round() as usize;
    eprint!(
        "\r[{}{}] {:5.1}%  {} / {}",
        "#".repeat(filled),
        ".".repeat(width - filled),
        frac * 100.0,
        busbar_core::duration::format_duration(Duration::from_secs_f64(sim)),
        busbar_core::duration::format_duration(Duration::from_secs_f64(end))
    );
}
