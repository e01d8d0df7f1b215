//! The signals that stop a program: Ctrl-C (SIGINT) and, on Unix, SIGTERM (what `docker stop`,
//! systemd and Kubernetes send). Shared by busbar-sim and busbar.

/// Resolves at the first SIGINT or SIGTERM; never, if neither can be listened for.
pub async fn signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => tracing::info!("interrupted (SIGINT): stopping"),
        _ = terminate => tracing::info!("terminated (SIGTERM): stopping"),
    }
}
