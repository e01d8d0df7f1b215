//! busbar-bench: runs every benchmark and prints one markdown table. Each row measures a real
//! process of ours next to a peer measured in the same run where one exists. Later issues add
//! rows here. See docs/benchmarks.md for what each row means and the figures measured.
//!
//! Usage: `cargo run --release -p busbar-bench [-- --quick]` (the busbar-sim binary must be
//! built in the same profile; a Python with pymodbus is taken from $BUSBAR_PYTHON or python3).

mod bacnet;
mod echo;
mod influx;
mod load;
mod proc_stats;
mod rows;
mod snmp;

use clap::Parser;

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
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(port) = args.echo_server {
        return echo::serve(port);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let table = rt.block_on(rows::run_all(&args))?;
    println!("{table}");
    Ok(())
}
