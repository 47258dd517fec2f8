//! `palisade serve`: runs the API server until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use palisade_server::service::notifications::SmtpSettings;
use palisade_server::{AppState, ServerConfig};

/// Arguments of `palisade serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "PALISADE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Directory for the embedded database and `bootstrap.txt`.
    #[arg(long, env = "PALISADE_DATA_DIR", default_value = "palisade-data")]
    pub data_dir: PathBuf,
    /// Store URL: `sqlite://PATH` or `postgres://USER@HOST:PORT/DB` [default: sqlite://DATA_DIR/palisade.db].
    #[arg(long, env = "PALISADE_STORE")]
    pub store: Option<String>,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 10 * 1024 * 1024)]
    pub body_limit: usize,
    /// Largest body in bytes of ingest routes (audit events, flow logs, intel feeds, rule packs).
    #[arg(long, default_value_t = 256 * 1024 * 1024)]
    pub ingest_body_limit: usize,
    /// Seconds a request may take before it is answered 408.
    #[arg(long, default_value_t = 30)]
    pub request_timeout: u64,
    /// Sustained requests per second allowed to one API key.
    #[arg(long, default_value_t = NonZeroU32::new(200).unwrap_or(NonZeroU32::MIN))]
    pub rate_limit: NonZeroU32,
    /// Burst of requests one API key may send above the sustained rate.
    #[arg(long, default_value_t = NonZeroU32::new(400).unwrap_or(NonZeroU32::MIN))]
    pub rate_burst: NonZeroU32,
    /// Let notification endpoints use plain http:// and loopback or private addresses.
    /// Development and tests only: in production a webhook must not reach internal services.
    #[arg(long, env = "PALISADE_ALLOW_INSECURE_WEBHOOKS")]
    pub allow_insecure_webhooks: bool,
    /// SMTP relay host for e-mail notification channels (none: e-mail channels are refused).
    #[arg(long, env = "PALISADE_SMTP_HOST")]
    pub smtp_host: Option<String>,
    /// SMTP relay port.
    #[arg(long, env = "PALISADE_SMTP_PORT", default_value_t = 587)]
    pub smtp_port: u16,
    /// `From:` address of notification e-mails.
    #[arg(long, env = "PALISADE_SMTP_FROM", default_value = "palisade@localhost")]
    pub smtp_from: String,
    /// Talk plain SMTP instead of upgrading with STARTTLS (a relay on the same host).
    #[arg(long)]
    pub smtp_no_starttls: bool,
    /// SMTP user name.
    #[arg(long, env = "PALISADE_SMTP_USERNAME")]
    pub smtp_username: Option<String>,
    /// SMTP password (prefer the environment variable; flags show in `ps`).
    #[arg(long, env = "PALISADE_SMTP_PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<String>,
    /// Scaled mode: the NATS JetStream server ingest batches go through (`nats://HOST:PORT`).
    /// Needs a PostgreSQL `--store` shared by every process. Without it, batches go to the
    /// store's own journal (embedded mode).
    #[arg(long, env = "PALISADE_BUS")]
    pub bus: Option<String>,
    /// Names the bus's stream, subjects and consumers (the same in every process of one
    /// deployment).
    #[arg(long, env = "PALISADE_BUS_PREFIX", default_value = "palisade")]
    pub bus_prefix: String,
    /// Partitions of the ingest stream (the same in every process of one deployment).
    #[arg(long, env = "PALISADE_BUS_PARTITIONS", default_value_t = 8)]
    pub bus_partitions: u32,
    /// Seconds a batch may stay unacknowledged before the bus delivers it again (to whichever
    /// process owns its partition then).
    #[arg(long, env = "PALISADE_BUS_ACK_WAIT", default_value_t = 30)]
    pub bus_ack_wait: u64,
    /// Seconds between two looks of the scan scheduler for due scans.
    #[arg(long, default_value_t = 60)]
    pub scheduler_tick: u64,
    /// Resources per scan shard: the unit of a scan that any process sharing the store may
    /// evaluate (smaller spreads a scan wider; larger writes fewer, bigger transactions).
    #[arg(long, env = "PALISADE_SCAN_SHARD_SIZE", default_value_t = palisade_server::service::scans::SHARD_SIZE)]
    pub scan_shard_size: u32,
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    crate::commands::init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(args))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating data directory {}", args.data_dir.display()))?;
    let store_url = args
        .store
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", args.data_dir.join("palisade.db").display()));
    let store = palisade_store::connect(&store_url)
        .await
        .with_context(|| format!("opening store {}", redact(&store_url)))?;
    let master_key = palisade_server::service::credentials::MasterKey::load_or_create(
        &args.data_dir,
        std::env::var("PALISADE_MASTER_KEY").ok().as_deref(),
    )
    .context("loading the master key that seals credentials")?;
    let config = ServerConfig {
        master_key: Some(std::sync::Arc::new(master_key)),
        body_limit_bytes: args.body_limit,
        ingest_body_limit_bytes: args.ingest_body_limit,
        request_timeout: Duration::from_secs(args.request_timeout),
        rate_limit_per_second: args.rate_limit,
        rate_limit_burst: args.rate_burst,
        allow_insecure_webhooks: args.allow_insecure_webhooks,
        smtp: args.smtp_host.clone().map(|host| SmtpSettings {
            host,
            port: args.smtp_port,
            from: args.smtp_from.clone(),
            starttls: !args.smtp_no_starttls,
            username: args.smtp_username.clone(),
            password: args.smtp_password.clone(),
        }),
        scheduler_tick: Duration::from_secs(args.scheduler_tick.max(1)),
        scan_shard_size: args.scan_shard_size.max(1),
        ..ServerConfig::default()
    };
    if config.allow_insecure_webhooks {
        tracing::warn!(
            "--allow-insecure-webhooks: notifications may go to plain http and internal addresses"
        );
    }
    // Processes sharing a PostgreSQL store divide scheduling, scans and ingest partitions
    // through advisory locks on a connection of their own.
    let locks = palisade_store::locks::ClusterLocks::connect(&store_url)
        .await
        .context("opening the lock connection")?;
    let bus: Option<std::sync::Arc<dyn palisade_bus::IngestBus>> = match &args.bus {
        None => None,
        Some(url) => {
            anyhow::ensure!(
                locks.is_some(),
                "--bus needs a PostgreSQL --store shared by every process (partition ownership \
                 lives there)"
            );
            let settings = palisade_bus::nats::NatsSettings {
                prefix: args.bus_prefix.clone(),
                partitions: args.bus_partitions,
                ack_wait: Duration::from_secs(args.bus_ack_wait),
                ..palisade_bus::nats::NatsSettings::new(url)
            };
            let bus = palisade_bus::nats::NatsBus::connect(settings, store.clone())
                .await
                .with_context(|| format!("connecting to the bus {url}"))?;
            tracing::info!(bus = %url, partitions = args.bus_partitions, "scaled mode: ingest goes through NATS JetStream");
            let bus: std::sync::Arc<dyn palisade_bus::IngestBus> = std::sync::Arc::new(bus);
            Some(bus)
        }
    };
    let state = AppState::new(store, config).with_cluster(bus, locks);
    if let Some(bootstrap) = palisade_server::bootstrap(&state, &args.data_dir).await? {
        // Printed once, on stdout only: the key is never logged.
        print!("{}", bootstrap.lines());
        use std::io::Write as _;
        std::io::stdout().flush()?;
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, store = %redact(&store_url), "palisade listening on http://{address}");
    palisade_server::run(listener, state, shutdown_signal()).await?;
    tracing::info!("palisade stopped");
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// Hides a password in a store URL before it is logged.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _password)) => {
                    format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..])
                }
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_redacted_from_store_urls() {
        assert_eq!(
            redact("postgres://user:secret@db:5432/x"),
            "postgres://user:***@db:5432/x"
        );
        assert_eq!(redact("postgres://user@db/x"), "postgres://user@db/x");
        assert_eq!(redact("sqlite://data/p.db"), "sqlite://data/p.db");
    }
}
