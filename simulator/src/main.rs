//! busbar-sim: emulates field devices (meters, transfer switches, insulation monitors, tank
//! gauges, separators, vapour recovery, EV chargers, breakers, pulse counters) over Modbus TCP,
//! with their real register maps and physics in simulated time, from YAML scenarios.

use anyhow::Context;
use busbar_core::profile::{Access, Kind};
use busbar_sim::load::{demo_scenario, load_scenario, resolve_profiles};
use busbar_sim::runner::{self, RunOptions};
use busbar_sim::scenario::Scenario;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "busbar-sim", version, about = "Busbar device-twin simulator: field devices over Modbus TCP, driven by YAML scenarios", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a scenario: Modbus-TCP listeners plus the HTTP control API.
    Run {
        /// Scenario file (see scenarios/ and docs/simulator.md).
        scenario: PathBuf,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Serve the built-in demo site (scenarios/demo.yaml, compiled in): needs no files.
    Demo {
        #[command(flatten)]
        run: RunArgs,
    },
    /// Run a scenario as a test of a system under test (SUT): play it, record what the SUT does
    /// to the devices, probe what it shows, receive what it announces, judge the scenario's
    /// `expect` entries (docs/qa.md). Exits 0 when every expectation is met, 1 when one is
    /// not (or the scenario is invalid), 2 when the run cannot start.
    Test {
        /// Scenario file with `expect` entries.
        scenario: PathBuf,
        /// Reports to write, comma-separated: `junit=FILE`, `json=FILE`.
        #[arg(long)]
        report: Option<String>,
        /// Address of the (first) gateway listener, overriding the scenario's.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Simulated seconds per real second: 1 for a real SUT, more only up to the scenario's
        /// `max_speed`.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Seed of every random process (the scenario's by default).
        #[arg(long)]
        seed: Option<u64>,
        /// Run at least this long (simulated), e.g. 2m.
        #[arg(long, value_parser = parse_duration_arg)]
        duration: Option<std::time::Duration>,
        /// Profile directory (default: profiles/ beside the scenario's folder, else built-in).
        #[arg(long)]
        profiles: Option<PathBuf>,
        /// Set a scenario parameter, NAME=VALUE (repeatable; `busbar-sim check` lists them).
        #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param_arg)]
        params: Vec<(String, String)>,
    },
    /// Record a real device into a trace that a scenario device replays (`replay: { trace }`):
    /// poll it over Modbus TCP or RTU through a profile's read plan (or raw ranges) every
    /// interval, writing each answer, exception or silence as it comes (docs/simulator.md).
    Record {
        /// A Modbus-TCP device or gateway, HOST:PORT.
        #[arg(long, conflicts_with = "rtu", required_unless_present = "rtu")]
        tcp: Option<String>,
        /// Or a serial line (`/dev/ttyUSB0`), read as Modbus RTU.
        #[arg(long)]
        rtu: Option<String>,
        /// Serial speed.
        #[arg(long, default_value_t = 9600)]
        baud: u32,
        /// Serial parity: none, even, odd.
        #[arg(long, default_value = "even")]
        parity: String,
        /// Serial stop bits.
        #[arg(long, default_value_t = 1)]
        stop_bits: u8,
        /// The device's unit id.
        #[arg(long, default_value_t = 1)]
        unit: u8,
        /// Read every point of this profile, along the bridge's read plan.
        #[arg(long)]
        profile: Option<String>,
        /// Raw ranges TABLE:ADDRESS:COUNT (holding:120:8), repeatable; with or without --profile.
        #[arg(long = "range")]
        ranges: Vec<String>,
        /// Time between two polls of every block.
        #[arg(long, default_value = "1s", value_parser = parse_duration_arg)]
        interval: std::time::Duration,
        /// How long to record (Ctrl-C stops earlier and keeps what was read).
        #[arg(long, default_value = "1m", value_parser = parse_duration_arg)]
        duration: std::time::Duration,
        /// Wait this long for an answer; none in time is recorded as a silence.
        #[arg(long, default_value = "1s", value_parser = parse_duration_arg)]
        timeout: std::time::Duration,
        /// The trace file to write (JSON Lines).
        #[arg(long, short)]
        out: PathBuf,
        /// Profile directory (default: built-in).
        #[arg(long)]
        profiles: Option<PathBuf>,
    },
    /// Validate a scenario and its profiles; report every error with file and line.
    Check {
        scenario: PathBuf,
        /// Profile directory (default: profiles/ beside the scenario's folder, else built-in).
        #[arg(long)]
        profiles: Option<PathBuf>,
        /// Set a scenario parameter, NAME=VALUE (repeatable; `busbar-sim check` lists them).
        #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param_arg)]
        params: Vec<(String, String)>,
    },
    /// Print a profile's register map as a table.
    Registers {
        /// Profile name, e.g. socomec-diris-a40.
        profile: String,
        #[arg(long)]
        profiles: Option<PathBuf>,
    },
    /// List the available profiles.
    Profiles {
        #[arg(long)]
        profiles: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Address of the (first) gateway listener, overriding the scenario's (port 0 = any).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Address of the HTTP control API.
    #[arg(long, default_value = "127.0.0.1:8081")]
    control: SocketAddr,
    /// Do not serve the control API.
    #[arg(long)]
    no_control: bool,
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Seed of every random process (the scenario's by default).
    #[arg(long)]
    seed: Option<u64>,
    /// Stop after this much simulated time, e.g. 1h or 90m (default: run until Ctrl-C).
    #[arg(long, value_parser = parse_duration_arg)]
    duration: Option<std::time::Duration>,
    /// Profile directory (default: profiles/ beside the scenario's folder, else built-in).
    #[arg(long)]
    profiles: Option<PathBuf>,
    /// Set a scenario parameter, NAME=VALUE (repeatable; `busbar-sim check` lists them).
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param_arg)]
    params: Vec<(String, String)>,
}

enum ReportKind {
    Junit,
    Json,
}

/// `junit=FILE,json=FILE`.
fn parse_reports(text: Option<&str>) -> anyhow::Result<Vec<(ReportKind, PathBuf)>> {
    let mut out = Vec::new();
    for part in text.unwrap_or_default().split(',').filter(|p| !p.trim().is_empty()) {
        let (kind, file) = part
            .split_once('=')
            .with_context(|| format!("--report `{part}`: write junit=FILE or json=FILE"))?;
        let kind = match kind.trim() {
            "junit" => ReportKind::Junit,
            "json" => ReportKind::Json,
            other => anyhow::bail!("--report: unknown format `{other}` (junit, json)"),
        };
        out.push((kind, PathBuf::from(file.trim())));
    }
    Ok(out)
}

/// `  parameter NAME = VALUE (default|--param): DESCRIPTION` for each declared parameter.
fn parameter_lines(s: &Scenario) -> String {
    let mut o = String::new();
    for p in &s.parameters {
        o.push_str(&format!(
            "  parameter {} = {} ({}){}\n",
            p.name,
            p.value,
            if p.overridden { "--param" } else { "default" },
            if p.description.is_empty() {
                String::new()
            } else {
                format!(": {}", p.description)
            }
        ));
    }
    o
}

fn parse_param_arg(s: &str) -> Result<(String, String), String> {
    busbar_sim::params::parse_override(s)
}

fn parse_duration_arg(s: &str) -> Result<std::time::Duration, String> {
    busbar_core::duration::parse_duration(s)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("BUSBAR_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check {
            scenario,
            profiles,
            params,
        } => match load_scenario(&scenario, profiles.as_deref(), &params) {
            Ok((s, from)) => {
                println!(
                    "{}: ok: site `{}` with {} devices on {} listeners, {} timeline entries, {} expectations (profiles from {from})",
                    scenario.display(),
                    s.name,
                    s.devices.len(),
                    s.listeners.len(),
                    s.timeline.len(),
                    s.expectations.len()
                );
                print!("{}", parameter_lines(&s));
                Ok(ExitCode::SUCCESS)
            }
            Err(d) => {
                eprintln!("{d}");
                eprintln!("{} error(s)", d.len());
                Ok(ExitCode::from(1))
            }
        },
        Command::Registers { profile, profiles } => {
            let (set, _) = resolve_profiles(profiles.as_deref(), None).map_err(|d| anyhow::anyhow!("{d}"))?;
            let p = set
                .get(&profile)
                .with_context(|| format!("unknown profile `{profile}` (try `busbar-sim profiles`)"))?;
            print_registers(p);
            Ok(ExitCode::SUCCESS)
        }
        Command::Profiles { profiles } => {
            let (set, from) = resolve_profiles(profiles.as_deref(), None).map_err(|d| anyhow::anyhow!("{d}"))?;
            let mut o = format!("profiles from {from}:\n");
            for p in set.values() {
                o.push_str(&format!(
                    "  {:28} {:18} {} {} ({} points)\n",
                    p.name,
                    p.family.as_str(),
                    p.manufacturer,
                    p.model,
                    p.points.len()
                ));
            }
            emit(&o);
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { scenario, run } => {
            let (s, from) = match load_scenario(&scenario, run.profiles.as_deref(), &run.params) {
                Ok(x) => x,
                Err(d) => {
                    eprintln!("{d}");
                    return Ok(ExitCode::from(1));
                }
            };
            tracing::info!(scenario = %scenario.display(), profiles = %from, "scenario loaded");
            serve(s, run)
        }
        Command::Test {
            scenario,
            report,
            listen,
            speed,
            seed,
            duration,
            profiles,
            params,
        } => {
            let (s, _) = match load_scenario(&scenario, profiles.as_deref(), &params) {
                Ok(x) => x,
                Err(d) => {
                    eprintln!("{d}");
                    return Ok(ExitCode::from(1));
                }
            };
            let reports = parse_reports(report.as_deref())?;
            if !(speed > 0.0 && speed <= 100_000.0) {
                anyhow::bail!("--speed must be within (0, 100000]");
            }
            if speed > s.max_speed {
                anyhow::bail!(
                    "--speed {speed}: {} allows at most x{} (`max_speed`); a real system under test sees real time unless the scenario says it may run faster",
                    scenario.display(),
                    s.max_speed
                );
            }
            let opts = busbar_sim::qa::TestOptions {
                speed,
                seed,
                listen,
                duration,
            };
            let file = scenario.display().to_string();
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            println!(
                "busbar-sim test: {file}: {} expectation(s), speed x{speed}",
                s.expectations.len()
            );
            print!("{}", parameter_lines(&s));
            let r = rt.block_on(busbar_sim::qa::run(&file, &s, &opts))?;
            emit(&busbar_sim::qa::report::human(&r));
            for (kind, path) in reports {
                let text = match kind {
                    ReportKind::Junit => busbar_sim::qa::report::junit(&r),
                    ReportKind::Json => serde_json::to_string_pretty(&busbar_sim::qa::report::json(&r))?,
                };
                std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
            }
            Ok(if r.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Record {
            tcp,
            rtu,
            baud,
            parity,
            stop_bits,
            unit,
            profile,
            ranges,
            interval,
            duration,
            timeout,
            out,
            profiles,
        } => record(RecordArgs {
            tcp,
            rtu,
            baud,
            parity,
            stop_bits,
            unit,
            profile,
            ranges,
            interval,
            duration,
            timeout,
            out,
            profiles,
        }),
        Command::Demo { run } => {
            let s = demo_scenario().map_err(|d| anyhow::anyhow!("built-in demo is invalid:\n{d}"))?;
            serve(s, run)
        }
    }
}

struct RecordArgs {
    tcp: Option<String>,
    rtu: Option<String>,
    baud: u32,
    parity: String,
    stop_bits: u8,
    unit: u8,
    profile: Option<String>,
    ranges: Vec<String>,
    interval: std::time::Duration,
    duration: std::time::Duration,
    timeout: std::time::Duration,
    out: PathBuf,
    profiles: Option<PathBuf>,
}

fn record(a: RecordArgs) -> anyhow::Result<ExitCode> {
    use busbar_sim::record::{self, Recording, Source};
    let mut blocks = Vec::new();
    if let Some(name) = &a.profile {
        let (set, _) = resolve_profiles(a.profiles.as_deref(), None).map_err(|d| anyhow::anyhow!("{d}"))?;
        let p = set
            .get(name)
            .with_context(|| format!("unknown profile `{name}` (try `busbar-sim profiles`)"))?;
        blocks = record::profile_blocks(p);
    }
    for r in &a.ranges {
        blocks.push(record::parse_range(r).map_err(|e| anyhow::anyhow!("--range {e}"))?);
    }
    if blocks.is_empty() {
        anyhow::bail!("nothing to record: give --profile NAME or --range TABLE:ADDRESS:COUNT");
    }
    if !(1..=247).contains(&a.unit) {
        anyhow::bail!("--unit {} is outside 1..=247", a.unit);
    }
    if a.interval.is_zero() || a.timeout.is_zero() {
        anyhow::bail!("--interval and --timeout must be longer than 0");
    }
    let source = match (a.tcp, a.rtu) {
        (Some(addr), None) => Source::Tcp(addr),
        (None, Some(device)) => {
            let (line, problems) = busbar_modbus::rtu::SerialLineDoc {
                device,
                baud: a.baud,
                parity: a.parity,
                stop_bits: a.stop_bits,
                frame_interval_ms: 50,
            }
            .resolve();
            if let Some(p) = problems.first() {
                anyhow::bail!("{p}");
            }
            Source::Rtu(line)
        }
        _ => anyhow::bail!("give --tcp HOST:PORT or --rtu DEVICE"),
    };
    let rec = Recording {
        source,
        unit: a.unit,
        profile: a.profile,
        blocks,
        interval: a.interval,
        duration: a.duration,
        timeout: a.timeout,
    };
    let file = std::fs::File::create(&a.out).with_context(|| format!("cannot create {}", a.out.display()))?;
    let mut out = std::io::BufWriter::new(file);
    eprintln!(
        "recording unit {} on {} ({} blocks every {:?}) for {} into {}",
        rec.unit,
        rec.source.describe(),
        rec.blocks.len(),
        rec.interval,
        busbar_core::duration::format_duration(rec.duration),
        a.out.display()
    );
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let total = rec.duration.as_secs_f64();
    let mut shown = std::time::Instant::now();
    let tally = rt.block_on(record::record(&rec, &mut out, busbar_sim::shutdown::signal(), |t| {
        if shown.elapsed() >= std::time::Duration::from_secs(10) {
            shown = std::time::Instant::now();
            eprintln!("  {:.0} s of {total:.0} s: {t}", t.elapsed_s);
        }
    }))?;
    eprintln!("recorded {tally} into {}", a.out.display());
    Ok(ExitCode::SUCCESS)
}

fn serve(scenario: Scenario, args: RunArgs) -> anyhow::Result<ExitCode> {
    if !(args.speed > 0.0 && args.speed <= 100_000.0) {
        anyhow::bail!("--speed must be within (0, 100000]");
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = std::env::var("BUSBAR_WORKERS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        builder.worker_threads(n);
    }
    let rt = builder.enable_all().build()?;
    rt.block_on(async move {
        let opts = RunOptions {
            speed: args.speed,
            seed: args.seed,
            duration: args.duration,
            listen: args.listen,
            control: (!args.no_control).then_some(args.control),
            progress: args.duration.is_some() && args.speed > 1.0,
            ..RunOptions::default()
        };
        let mut running = runner::start(&scenario, opts).await?;
        println!(
            "busbar-sim: site `{}` ({} devices), seed {}, speed x{}",
            scenario.name,
            scenario.devices.len(),
            running.site.lock().map(|s| s.seed).unwrap_or(0),
            args.speed
        );
        for (name, addr) in &running.gateways {
            let units: Vec<String> = scenario
                .devices
                .iter()
                .filter(|d| scenario.listeners.get(d.listener).is_some_and(|l| &l.name == name))
                .map(|d| format!("{}={}", d.unit_id, d.name))
                .collect();
            match scenario
                .listeners
                .iter()
                .find(|l| &l.name == name)
                .and_then(|l| l.rtu.as_ref())
            {
                Some(line) => println!(
                    "  modbus-rtu {name}: {} at {} baud  units: {}",
                    line.device,
                    line.baud,
                    units.join(" ")
                ),
                None => println!("  modbus-tcp {name}: {addr}  units: {}", units.join(" ")),
            }
        }
        if let Some(c) = running.control {
            println!("  control API: http://{c}/api/devices  (docs/simulator.md)");
        }
        tokio::select! {
            _ = running.finished() => tracing::info!("duration reached"),
            _ = busbar_sim::shutdown::signal() => {}
        }
        running.stop().await;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn print_registers(p: &busbar_core::profile::Profile) {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(o, "{} — {} {} ({})", p.name, p.manufacturer, p.model, p.family.as_str());
    if !p.description.is_empty() {
        let _ = writeln!(o, "{}", p.description);
    }
    let _ = writeln!(
        o,
        "{:<9} {:>6} {:>7}  {:<9} {:<5} {:>9}  {:<7} {:<3} point",
        "table", "addr", "hex", "type", "order", "scale", "unit", "rw"
    );
    let mut points: Vec<_> = p.points.iter().collect();
    points.sort_by_key(|x| (x.register.table, x.register.address));
    for x in points {
        let r = &x.register;
        let extra = match (&x.constant, x.kind) {
            (Some(busbar_core::profile::Constant::Text(t)), _) => format!(" = \"{t}\""),
            (Some(busbar_core::profile::Constant::Number(n)), _) => format!(" = {n}"),
            (None, Kind::Enum | Kind::Bitmask) => format!(
                " {{{}}}",
                x.labels
                    .iter()
                    .map(|(k, v)| format!("{k}:{v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => String::new(),
        };
        let _ = writeln!(
            o,
            "{:<9} {:>6} {:>7}  {:<9} {:<5} {:>9}  {:<7} {:<3} {}{}",
            r.table.as_str(),
            r.address,
            format!("{:#06x}", r.address),
            r.data_type.name(),
            if r.data_type.words() > 1 && !matches!(r.data_type, busbar_core::profile::DataType::Ascii(_)) {
                r.order.as_str()
            } else {
                ""
            },
            r.scale,
            x.unit.symbol(),
            if x.access == Access::ReadWrite { "rw" } else { "r" },
            x.id,
            extra
        );
    }
    emit(&o);
}

/// Print to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn emit(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}
