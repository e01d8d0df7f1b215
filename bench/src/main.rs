//! busbar-bench: runs every benchmark and prints one markdown table. Each row measures a real
//! process of ours next to a peer measured in the same run where one exists. Later issues add
//! rows here. See docs/benchmarks.md for what each row means and the figures measured.
//!
//! Usage: `cargo run --release -p busbar-bench [-- --quick]` (the busbar-sim binary must be
//! built in the same profile; a Python with pymodbus is taken from $BUSBAR_PYTHON or python3).

mod alarm_engine;
mod alarms;
mod bacnet;
mod dlm_loop;
mod echo;
mod influx;
mod load;
mod opcua_load;
mod proc_stats;
mod rows;
mod serve;
mod snmp;

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "Busbar benchmarks: prints one markdown table")]
pub struct Args {
    /// Shorter measurement windows (for a smoke run).
    #[arg(long)]
    pub quick: bool,
    /// Only rows whose name contains this text.
    #[arg(long)]
    pub only: Option<String>,
    /// Internal: run the bare TCP echo peer on this port (request -> fixed-size reply).
    #[arg(long, hide = true)]
    pub echo_server: Option<u16>,
    /// Internal: one of the bench's own servers, run as a child process.
    #[command(subcommand)]
    pub serve: Option<Serve>,
}

/// The servers the rows start as child processes, so that their CPU is measured apart.
#[derive(Subcommand)]
pub enum Serve {
    /// The bridge's OPC UA server over a synthetic store of about POINTS points, RATE of them
    /// changing per second (no devices, no acquisition). Writes the point ids to IDS.
    #[command(hide = true)]
    ServeOpcua {
        #[arg(long)]
        points: usize,
        #[arg(long)]
        rate: usize,
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long)]
        ids: PathBuf,
    },
    /// The compiled OPC UA load client alone: subscribe to the ids in IDS (namespace NS) at
    /// URL, measure for SECONDS, print one JSON line.
    #[command(hide = true)]
    LoadOpcua {
        #[arg(long)]
        url: String,
        #[arg(long)]
        ns: String,
        #[arg(long)]
        ids: PathBuf,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
    },
    /// The bridge's BACnet/IP server over a synthetic store of about POINTS points, RATE of them
    /// changing per second.
    #[command(hide = true)]
    ServeBacnet {
        #[arg(long)]
        points: usize,
        #[arg(long)]
        rate: usize,
        #[arg(long)]
        listen: SocketAddr,
    },
    /// The bridge's SNMP agent over a synthetic site of DEVICES power meters.
    #[command(hide = true)]
    ServeSnmp {
        #[arg(long)]
        devices: usize,
        #[arg(long)]
        listen: SocketAddr,
    },
    /// With --lines, write a history backlog into DIR; with --url, send DIR's backlog to
    /// InfluxDB 1.x (database --db) and print lines and seconds.
    #[command(hide = true)]
    ServeHistory {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        lines: Option<u64>,
        #[arg(long)]
        url: Option<String>,
        #[arg(long, default_value = "bench")]
        db: String,
    },
    /// Play the load-management noon rush with both strategies (3 minutes) and write their
    /// plots (SVG) into OUT: docs/load-management.md shows them.
    PlotDlm {
        #[arg(long, default_value = "docs")]
        out: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(port) = args.echo_server {
        return echo::serve_forever(port);
    }
    if let Some(serve) = args.serve {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        return match serve {
            Serve::ServeOpcua {
                points,
                rate,
                listen,
                ids,
            } => rt.block_on(serve::opcua_load(points, rate, listen, &ids)),
            Serve::LoadOpcua { url, ns, ids, seconds } => rt.block_on(async {
                // The client library's own log, on stderr, when RUST_LOG asks for it.
                let _ = tracing_subscriber::fmt()
                    .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                    .with_writer(std::io::stderr)
                    .try_init();
                let list = opcua_load::read_ids(&ids)?;
                let f = opcua_load::run(&url, &ns, &list, std::time::Duration::from_secs_f64(seconds)).await?;
                println!("{}", f.json());
                Ok(())
            }),
            Serve::ServeBacnet { points, rate, listen } => rt.block_on(serve::bacnet_load(points, rate, listen)),
            Serve::ServeSnmp { devices, listen } => rt.block_on(serve::snmp_load(devices, listen)),
            Serve::ServeHistory { dir, lines, url, db } => match (lines, url) {
                (Some(lines), None) => {
                    let (lines, bytes) = serve::history_backlog(lines, &dir)?;
                    println!("{{\"lines\": {lines}, \"bytes\": {bytes}}}");
                    Ok(())
                }
                (None, Some(url)) => {
                    let (lines, seconds) = rt.block_on(serve::history_replay(&url, &db, &dir))?;
                    println!("{{\"lines\": {lines}, \"seconds\": {seconds}}}");
                    Ok(())
                }
                _ => anyhow::bail!("give --lines (prepare a backlog) or --url (send it)"),
            },
            Serve::PlotDlm { out } => rt.block_on(dlm_loop::plots(&out)),
        };
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let table = rt.block_on(rows::run_all(&args))?;
    println!("{table}");
    Ok(())
}
