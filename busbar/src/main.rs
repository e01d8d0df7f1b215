//! busbar: acquires field devices over Modbus TCP and serves every point northbound.

use anyhow::Context as _;
mod demo;

use busbar_bridge::config::load_config;
use busbar_bridge::demo::{influx_from_url, DemoPorts};
use busbar_bridge::northbound::modbus::map as modbus_map;
use busbar_bridge::store::Store;
use clap::{Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "busbar",
    version,
    about = "Busbar bridge: Modbus field devices in, one point model out (Modbus TCP, OPC UA, BACnet/IP, SNMP, HTTP; history to InfluxDB)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the demo site: the simulator (scenarios/demo.yaml) and the bridge (config/demo.yaml)
    /// in one process; needs no files.
    Demo(Box<DemoArgs>),
    /// Run the bridge with a configuration file (production).
    Run {
        #[arg(long)]
        config: PathBuf,
        /// Profile directory (default: the config's profiles_dir, else profiles/ nearby, else built-in).
        #[arg(long)]
        profiles: Option<PathBuf>,
    },
    /// Validate a configuration without touching the network; report every error with its line.
    Check {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        profiles: Option<PathBuf>,
    },
    /// Export a mapping for integrators.
    Export {
        #[command(subcommand)]
        what: Export,
    },
}

#[derive(clap::Args)]
struct DemoArgs {
    /// Northbound Modbus-TCP server.
    #[arg(long, default_value = "127.0.0.1:5020")]
    modbus: SocketAddr,
    /// HTTP API.
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    /// OPC UA server.
    #[arg(long, default_value = "127.0.0.1:4840")]
    opcua: SocketAddr,
    /// BACnet/IP device (UDP). The wildcard address receives broadcast Who-Is.
    #[arg(long, default_value = "0.0.0.0:47808")]
    bacnet: SocketAddr,
    /// SNMP agent (UDP; community `public`, v3 user `busbar`, docs/snmp.md).
    #[arg(long, default_value = "127.0.0.1:1161")]
    snmp: SocketAddr,
    /// Send SNMPv2c traps (community public) to this address; repeat for several.
    #[arg(long)]
    snmp_trap: Vec<String>,
    /// Send SNMPv3 informs (user `busbar`) to this address; repeat for several.
    #[arg(long)]
    snmp_inform: Vec<String>,
    /// Write history to InfluxDB: `http://HOST:8086?db=NAME` (1.x), or the base URL with
    /// --influx-org/--influx-bucket/--influx-token (2.x). Without it the demo needs no database.
    #[arg(long)]
    influxdb: Option<String>,
    /// InfluxDB 2.x organisation (with --influxdb and --influx-bucket).
    #[arg(long)]
    influx_org: Option<String>,
    /// InfluxDB 2.x bucket.
    #[arg(long)]
    influx_bucket: Option<String>,
    /// InfluxDB 2.x API token (sent as `Authorization: Token ...`).
    #[arg(long)]
    influx_token: Option<String>,
    /// Where the history buffer is kept (store-and-forward while InfluxDB is away).
    #[arg(long, default_value = "busbar-history-buffer")]
    history_buffer: PathBuf,
    /// The buffer's quota in MB; when it is full the oldest lines are dropped (logged, counted).
    #[arg(long, default_value_t = 512.0)]
    history_quota_mb: f64,
    /// The alarm journal (SQLite); default: busbar-demo/alarms.db in the temporary directory,
    /// kept from one demo to the next.
    #[arg(long)]
    alarm_journal: Option<PathBuf>,
    /// The simulator's Modbus-TCP gateway.
    #[arg(long, default_value = "127.0.0.1:15020")]
    sim_gateway: SocketAddr,
    /// The simulator's control API.
    #[arg(long, default_value = "127.0.0.1:8081")]
    sim_control: SocketAddr,
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
}

#[derive(Subcommand)]
enum Export {
    /// The OPC UA address space of the Busbar namespace as NodeSet2 XML.
    Nodeset {
        /// Configuration (default: the built-in demo config).
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        profiles: Option<PathBuf>,
    },
    /// The BACnet objects as EDE files (B.I.G.-EU layout 2.3) for BMS integrators:
    /// <site>_EDE.csv, <site>_StateTexts.csv, <site>_Units.csv.
    Ede {
        /// Configuration (default: the built-in demo config).
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        profiles: Option<PathBuf>,
        /// Directory to write the files into.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// BUSBAR-MIB (SMIv2) for the configured enterprise root; the default root's file ships
    /// as mibs/BUSBAR-MIB.txt.
    Mib {
        /// Configuration (default: the built-in demo config).
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        profiles: Option<PathBuf>,
    },
    /// Grafana dashboards (InfluxQL, one per device family group) built from the profiles;
    /// dashboards/ holds the built-in profiles' set, with provisioning files.
    Dashboards {
        #[arg(long)]
        profiles: Option<PathBuf>,
        /// Directory to write the JSON files into.
        #[arg(long, default_value = "dashboards")]
        out: PathBuf,
    },
    /// The northbound Modbus register map (unit id, address, type, scale, point).
    ModbusMap {
        /// Configuration (default: the built-in demo config).
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        profiles: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "csv")]
        format: Format,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Csv,
    Md,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("BUSBAR_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn emit(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check { config, profiles } => match load_config(&config, profiles.as_deref()) {
            Ok(c) => {
                emit(&format!(
                    "{}: ok: site `{}`, {} devices on {} connections, profiles from {}\n",
                    config.display(),
                    c.site_name,
                    c.devices.len(),
                    c.connections.len(),
                    c.profiles_from
                ));
                Ok(ExitCode::SUCCESS)
            }
            Err(d) => {
                eprintln!("{d}\n{} error(s)", d.len());
                Ok(ExitCode::from(1))
            }
        },
        Command::Export { what } => export(what),
        Command::Run { config, profiles } => {
            let c = match load_config(&config, profiles.as_deref()) {
                Ok(c) => c,
                Err(d) => {
                    eprintln!("{d}");
                    return Ok(ExitCode::from(1));
                }
            };
            runtime()?.block_on(async move {
                let bridge = busbar_bridge::app::start(c).await?;
                print_endpoints(&bridge, None);
                busbar_sim::shutdown::signal().await;
                tracing::info!("stopping");
                bridge.stop().await;
                Ok::<_, anyhow::Error>(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => demo(*args),
    }
}

/// The config an export describes: the file given (errors printed, `None`), else the demo's.
/// Write exported files (name, content) into `dir`, creating it, and say each one.
fn write_files(dir: &Path, files: impl IntoIterator<Item = (String, String)>) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, content) in files {
        let path = dir.join(name);
        std::fs::write(&path, content).with_context(|| format!("cannot write {}", path.display()))?;
        emit(&format!("wrote {}\n", path.display()));
    }
    Ok(())
}

fn export_config(
    config: Option<PathBuf>,
    profiles: Option<PathBuf>,
) -> anyhow::Result<Option<busbar_bridge::config::Config>> {
    match config {
        Some(path) => match load_config(&path, profiles.as_deref()) {
            Ok(c) => Ok(Some(c)),
            Err(d) => {
                eprintln!("{d}");
                Ok(None)
            }
        },
        None => Ok(Some(busbar_bridge::demo::demo_config(
            DemoPorts::default().sim_gateway,
            &DemoPorts::default(),
        )?)),
    }
}

fn print_endpoints(bridge: &busbar_bridge::app::Bridge, sim: Option<&busbar_sim::runner::Running>) {
    let mut o = format!(
        "busbar: site `{}`, {} devices, {} points\n",
        bridge.store.site_name,
        bridge.store.device_count(),
        bridge.store.len()
    );
    for e in &bridge.endpoints {
        o.push_str(&format!("  {:<16} : {}\n", e.what, e.detail));
    }
    if let Some(a) = &bridge.alarms {
        let at = bridge.local_addr("http").map_or(String::new(), |h| {
            format!("  http://{h}/api/alarms  history: http://{h}/api/alarms/history")
        });
        o.push_str(&format!(
            "  {:<16} : {} defined, journal {}{at}\n",
            "alarms",
            a.defined,
            a.journal_path.display()
        ));
    }
    if let Some(s) = sim {
        o.push_str(&format!("  simulator gateway: {}\n", s.gateway()));
        if let Some(c) = s.control {
            o.push_str(&format!("  simulator control: http://{c}/api/devices   e.g. curl -XPOST http://{c}/api/devices/ats/events -H 'content-type: application/json' -d '{{\"event\":\"mains_lost\"}}'\n"));
        }
    }
    emit(&o);
}

/// `busbar export ...`.
fn export(what: Export) -> anyhow::Result<ExitCode> {
    match what {
        Export::Nodeset { config, profiles } => {
            let Some(c) = export_config(config, profiles)? else {
                return Ok(ExitCode::from(1));
            };
            let store = Store::new(&c, 16);
            let nodes = busbar_bridge::northbound::opcua::space::describe(&c, &store);
            emit(&busbar_bridge::northbound::opcua::space::nodeset_xml(&nodes));
            Ok(ExitCode::SUCCESS)
        }
        Export::Dashboards { profiles, out } => {
            let set = match profiles {
                Some(dir) => busbar_core::profile::load_dir(&dir),
                None => busbar_core::profile::embedded::profiles(),
            };
            let set = match set {
                Ok(s) => s,
                Err(d) => {
                    eprint!("{d}");
                    return Ok(ExitCode::from(1));
                }
            };
            let schema = busbar_bridge::grafana::Schema::new(&set);
            let dashboards = busbar_bridge::grafana::all(&schema);
            let errors = schema.errors();
            if !errors.is_empty() {
                anyhow::bail!("the dashboards do not fit the profiles:\n  {}", errors.join("\n  "));
            }
            write_files(&out, dashboards.iter().map(|d| (d.file_name(), d.to_json())))?;
            Ok(ExitCode::SUCCESS)
        }
        Export::Mib { config, profiles } => {
            let Some(c) = export_config(config, profiles)? else {
                return Ok(ExitCode::from(1));
            };
            let root = c
                .servers
                .snmp
                .as_ref()
                .map_or_else(busbar_bridge::northbound::snmp::mib::default_root, |s| s.root.clone());
            emit(&busbar_bridge::northbound::snmp::mib::mib_text(&root));
            Ok(ExitCode::SUCCESS)
        }
        Export::Ede { config, profiles, out } => {
            let Some(c) = export_config(config, profiles)? else {
                return Ok(ExitCode::from(1));
            };
            let Some(settings) = &c.servers.bacnet else {
                anyhow::bail!(
                    "the configuration does not enable servers.bacnet: there are no BACnet objects to export"
                );
            };
            let store = Store::new(&c, 16);
            // The layout in use: the site device, or the router and one device per field device.
            let tables = busbar_bridge::northbound::bacnet::objects::ObjectTable::layout(&c, settings, &store);
            let stamp = busbar_core::time::rfc3339(std::time::SystemTime::now());
            let files = busbar_bridge::northbound::bacnet::ede::files(
                &tables,
                &c.site_name,
                &c.site_id,
                &stamp,
                busbar_bridge::northbound::bacnet::ede::unit_text,
            );
            write_files(&out, files.into_iter().map(|f| (f.name, f.content)))?;
            Ok(ExitCode::SUCCESS)
        }
        Export::ModbusMap {
            config,
            profiles,
            format,
        } => {
            let Some(c) = export_config(config, profiles)? else {
                return Ok(ExitCode::from(1));
            };
            let store = Store::new(&c, 16);
            let order = c.servers.modbus.as_ref().map(|m| m.word_order).unwrap_or_default();
            let map = modbus_map::build(&c, &store, order);
            emit(&modbus_map::export(&map, &c, &store, matches!(format, Format::Md)));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `busbar demo`: the simulator and the bridge in one process until SIGINT or SIGTERM.
fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let DemoArgs {
        modbus,
        http,
        opcua,
        bacnet,
        snmp,
        snmp_trap,
        snmp_inform,
        influxdb,
        influx_org,
        influx_bucket,
        influx_token,
        history_buffer,
        history_quota_mb,
        alarm_journal,
        sim_gateway,
        sim_control,
        speed,
    } = args;
    let influxdb = influxdb
        .map(|u| {
            influx_from_url(
                &u,
                influx_org,
                influx_bucket,
                influx_token,
                history_buffer,
                history_quota_mb,
            )
        })
        .transpose()?;
    if !(speed > 0.0 && speed <= 10_000.0) {
        anyhow::bail!("--speed must be within (0, 10000]");
    }
    let ports = DemoPorts {
        sim_gateway,
        sim_control,
        modbus,
        http,
        opcua,
        bacnet,
        snmp,
        snmp_traps: snmp_trap,
        snmp_informs: snmp_inform,
        influxdb,
        alarm_journal: alarm_journal.unwrap_or_else(|| DemoPorts::default().alarm_journal),
    };
    runtime()?.block_on(async move {
        let (sim, bridge) = demo::start(&ports, speed).await?;
        print_endpoints(&bridge, Some(&sim));
        busbar_sim::shutdown::signal().await;
        tracing::info!("stopping");
        bridge.stop().await;
        sim.stop().await;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
