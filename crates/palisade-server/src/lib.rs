//! Palisade's HTTP API server.
//!
//! - [`app`] builds the router over an [`AppState`]; tests drive it in-process with
//!   `tower::ServiceExt::oneshot`.
//! - [`run`] serves it on a bound listener until a shutdown future completes, then drains
//!   in-flight requests (graceful shutdown). It also runs the background notification worker
//!   ([`service::notifications::spawn_worker`]); [`app`] alone does not, so in-process tests
//!   drive deliveries with [`service::notifications::run_delivery_pass`].
//! - [`bootstrap`] creates the default instance and its operator admin key on first start.
//!
//! Layout: `routes/` is HTTP only (one module per route family, each handler annotated for the
//! OpenAPI document); [`auth`] owns keys and the typed permission extractors; [`error`] and
//! [`json`] own the error contract; [`middleware`] adds trace ids, metrics, error bodies and
//! timeouts to every route; [`ui`] is the web dashboard under `/ui/`.

pub mod auth;
pub mod error;
pub mod json;
pub mod middleware;
pub mod routes;
pub mod service;
pub mod state;
pub mod ui;

use std::future::Future;
use std::path::Path;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use tokio::net::TcpListener;

pub use state::{AppState, ServerConfig};

/// Builds the whole router: API routes, `/openapi.json`, fallbacks and middleware.
pub fn app(state: AppState) -> Router {
    let (router, openapi) = routes::router().split_for_parts();
    let openapi_json = std::sync::Arc::new(openapi);
    let body_limit = state.config.body_limit_bytes;
    router
        .route(
            "/openapi.json",
            get(move || {
                let document = openapi_json.clone();
                async move { axum::Json(document.as_ref().clone()) }
            }),
        )
        .merge(ui::router())
        .fallback(|| async {
            error::ApiError::new(palisade_model::error::ErrorCode::NotFound, "no such route")
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::timeout,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .layer(axum::middleware::from_fn(middleware::finish))
        .with_state(state)
}

/// Returns the OpenAPI document of every route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes::router().split_for_parts().1
}

/// Serves the API on `listener` until `shutdown` completes, then finishes in-flight requests.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Background work (notification delivery) stops with the server: the same shutdown signal
    // ends its loop, and a pass in flight is given time to finish.
    let (stop_workers, workers_stopped) = tokio::sync::watch::channel(false);
    let notification_worker =
        service::notifications::spawn_worker(state.clone(), workers_stopped.clone());
    // Accepted ingest batches are processed in the background.
    let insights_worker = service::insights::spawn_worker(state.clone(), workers_stopped.clone());
    // Scan shards of other processes' scans, and scans whose coordinator died.
    let scan_worker = service::scans::spawn_worker(state.clone(), workers_stopped);
    // Scheduled scans run while the server serves.
    let scheduler = service::scheduler::spawn(state.clone());
    let governance = state.governance.clone();
    // The peer address lets unauthenticated routes (the collector registration) rate-limit per
    // client.
    let served = axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        let _ = stop_workers.send(true);
    })
    .await;
    let abort = notification_worker.abort_handle();
    if tokio::time::timeout(std::time::Duration::from_secs(30), notification_worker)
        .await
        .is_err()
    {
        abort.abort();
        tracing::warn!("the notification worker did not stop within 30 s; aborted it");
    }
    scheduler.abort();
    // A shard in flight is not committed: it stays pending for the next process or start.
    scan_worker.abort();
    let abort = insights_worker.abort_handle();
    if tokio::time::timeout(std::time::Duration::from_secs(30), insights_worker)
        .await
        .is_err()
    {
        // An unfinished batch stays pending in the journal and is processed at the next start.
        abort.abort();
        tracing::warn!("the insights worker did not stop within 30 s; aborted it");
    }
    // Admission decisions answered but still queued for the decision log.
    governance.decision_log.flush().await;
    served
}

/// The default instance and operator key created on a first start with an empty store.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub instance_id: String,
    pub admin_key: String,
}

impl Bootstrap {
    /// The two lines printed once on stdout and written to `bootstrap.txt`.
    pub fn lines(&self) -> String {
        format!(
            "instance_id: {}\nadmin_key: {}\n",
            self.instance_id, self.admin_key
        )
    }
}

/// On an empty store, creates the default instance and its operator admin key, and writes
/// `<data_dir>/bootstrap.txt` (mode 0600). Returns `None` when the store already has instances.
pub async fn bootstrap(state: &AppState, data_dir: &Path) -> anyhow::Result<Option<Bootstrap>> {
    if !state.store.list_instances().await?.is_empty() {
        return Ok(None);
    }
    let created = routes::instances::create_instance_with_admin(state, "default", true)
        .await
        .map_err(|error| anyhow::anyhow!("creating the default instance: {error}"))?;
    let bootstrap = Bootstrap {
        instance_id: created.instance.id,
        admin_key: created.admin_key,
    };
    write_secret_file(
        &data_dir.join("bootstrap.txt"),
        bootstrap.lines().as_bytes(),
    )?;
    Ok(Some(bootstrap))
}

/// Writes a file only its owner can read, creating it with that mode so it is never readable by
/// others, not even for a moment.
fn write_secret_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}
