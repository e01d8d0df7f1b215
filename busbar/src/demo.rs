//! `busbar demo`: the simulator with the demo site and the bridge with config/demo.yaml, in one
//! process, needing nothing but the build. The only place the bridge meets the simulator.

use busbar_bridge::app::{self, Bridge};
use busbar_bridge::demo::{demo_config, DemoPorts};
use busbar_sim::runner::{self, RunOptions, Running};

/// Start the simulator, then the bridge against it.
pub async fn start(ports: &DemoPorts, speed: f64) -> anyhow::Result<(Running, Bridge)> {
    let scenario = busbar_sim::load::demo_scenario().map_err(|d| anyhow::anyhow!("{d}"))?;
    let sim = runner::start(
        &scenario,
        RunOptions {
            speed,
            listen: Some(ports.sim_gateway),
            control: Some(ports.sim_control),
            ..RunOptions::default()
        },
    )
    .await?;
    let config = demo_config(sim.gateway(), ports)?;
    let bridge = app::start(config).await?;
    Ok((sim, bridge))
}
