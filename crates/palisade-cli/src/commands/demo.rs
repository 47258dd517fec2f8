//! `palisade demo`: a server on the embedded default with a demo instance worth looking at.
//!
//! On a fresh data directory it starts `palisade serve`'s server, then seeds it **through the
//! public API**, as a user or collector would: a multi-cloud inventory (AWS, Kubernetes, Linux
//! hosts, IBM Cloud — the compliant and misconfigured resources of every built-in rule's
//! fixtures), one scope per environment with the built-in profiles attached and scanned, the
//! public invictus-ir CloudTrail attack dataset as audit events, and a day of generated VPC flow
//! logs with planted attacks plus their threat-intel feed. Then it prints the URL and the admin
//! key and serves until Ctrl-C. On a data directory it seeded before, it just serves.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, bail};
use include_dir::{Dir, include_dir};
use palisade_client::{Client, Method};
use palisade_insights::network::generator::{self, GeneratorConfig};
use palisade_server::{AppState, ServerConfig};
use serde_json::{Value, json};

/// The built-in rules' fixtures: a compliant baseline and its misconfigured variants.
static FIXTURES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../content/fixtures");
/// Public CloudTrail logs of Stratus Red Team attacks (invictus-ir/aws_dataset, MIT licence; see
/// the README beside them).
static CLOUDTRAIL: Dir<'_> =
    include_dir!("$CARGO_MANIFEST_DIR/../palisade-logs/tests/data/cloudtrail/invictus-ir");

/// Which built-in profiles go on which environment's scope.
const ATTACHMENTS: [(&str, &[&str]); 8] = [
    ("cis-aws-foundations", &["aws"]),
    ("nist-800-53-aws", &["aws"]),
    ("cis-kubernetes-workloads", &["kubernetes"]),
    ("nist-800-53-kubernetes", &["kubernetes"]),
    ("cis-controls-v8-linux", &["on-prem"]),
    ("nist-800-53-linux", &["on-prem"]),
    ("nist-800-53-ibm-cloud", &["ibm-cloud"]),
    (
        "nist-800-53-all",
        &["aws", "kubernetes", "on-prem", "ibm-cloud"],
    ),
];

/// Marks a data directory the demo has seeded.
const SEEDED_MARKER: &str = "demo-seeded";

/// Arguments of `palisade demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Directory for the demo's database (reused on the next run).
    #[arg(long, default_value = "palisade-demo")]
    pub data_dir: PathBuf,
    /// Background flow records to generate (attacks come on top).
    #[arg(long, default_value_t = 50_000)]
    pub flows: u64,
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    crate::commands::init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(demo(args))?;
    Ok(ExitCode::SUCCESS)
}

async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let store_url = format!("sqlite://{}", args.data_dir.join("palisade.db").display());
    let store = palisade_store::connect(&store_url)
        .await
        .with_context(|| format!("opening {store_url}"))?;
    let master_key =
        palisade_server::service::credentials::MasterKey::load_or_create(&args.data_dir, None)?;
    let state = AppState::new(
        store,
        ServerConfig {
            master_key: Some(std::sync::Arc::new(master_key)),
            ..ServerConfig::default()
        },
    );
    let fresh = palisade_server::bootstrap(&state, &args.data_dir).await?;
    let bootstrap_text = std::fs::read_to_string(args.data_dir.join("bootstrap.txt"))
        .context("reading bootstrap.txt (delete the demo directory to start over)")?;
    let field = |name: &str| {
        bootstrap_text
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name}: ")))
            .map(str::to_owned)
            .with_context(|| format!("no `{name}` in bootstrap.txt"))
    };
    let (instance_id, admin_key) = (field("instance_id")?, field("admin_key")?);

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let address = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(palisade_server::run(listener, state, async move {
        let _ = stopped.await;
    }));
    let url = format!("http://{address}");

    let marker = args.data_dir.join(SEEDED_MARKER);
    if fresh.is_some() || !marker.exists() {
        let client = Client::new(&url, &admin_key)?;
        let seeded = seed(&client, &instance_id, args.flows).await;
        if let Err(error) = seeded {
            let _ = stop.send(());
            let _ = server.await;
            return Err(error.context("seeding the demo instance"));
        }
        std::fs::write(&marker, "")?;
    }
    println!(
        "Palisade demo ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!("url: {url}");
    println!("dashboard: {url}/ui");
    println!("instance_id: {instance_id}");
    println!("admin_key: {admin_key}");
    use std::io::Write as _;
    std::io::stdout().flush()?;
    crate::commands::serve::shutdown_signal().await;
    let _ = stop.send(());
    server.await.context("server task")??;
    Ok(())
}

/// The fixtures' resources with ids unique across fixtures (`<rule>/<resource>`).
fn demo_inventory() -> anyhow::Result<Vec<Value>> {
    let collected_at = chrono::Utc::now().to_rfc3339();
    let mut resources = Vec::new();
    for file in FIXTURES.files() {
        let Some(rule) = file
            .path()
            .file_stem()
            .and_then(|stem| stem.to_str())
            .map(str::to_owned)
        else {
            continue;
        };
        let text = file
            .contents_utf8()
            .with_context(|| format!("fixture {rule} is not UTF-8"))?;
        let fixture: Value =
            serde_yaml::from_str(text).with_context(|| format!("fixture {rule} does not parse"))?;
        for resource in fixture["resources"].as_array().into_iter().flatten() {
            let mut resource = resource.clone();
            let local = resource["id"].as_str().unwrap_or("resource").to_owned();
            resource["id"] = json!(format!("{rule}/{local}"));
            resource["name"] = json!(format!("{rule}-{local}"));
            resource["collected_at"] = json!(collected_at);
            resources.push(resource);
        }
    }
    if resources.is_empty() {
        bail!("no fixture resources are embedded");
    }
    Ok(resources)
}

async fn seed(client: &Client, instance_id: &str, flows: u64) -> anyhow::Result<()> {
    let v1 = format!("/instances/{instance_id}/v1");
    let v3 = format!("/instances/{instance_id}/v3");

    // Inventory, as a collector pushes it.
    let resources = demo_inventory()?;
    for batch in resources.chunks(500) {
        let answer = client
            .json(
                Method::POST,
                &format!("{v1}/inventory"),
                Some(&json!({"resources": batch})),
            )
            .await?;
        if answer["rejected"]
            .as_array()
            .is_some_and(|rejected| !rejected.is_empty())
        {
            bail!("demo inventory rejected: {}", answer["rejected"]);
        }
    }
    eprintln!("demo: {} resources pushed", resources.len());

    // One scope per environment, the built-in profiles attached, and a scan of each.
    let mut scopes = std::collections::HashMap::new();
    for environment in ["aws", "kubernetes", "on-prem", "ibm-cloud"] {
        let scope = client
            .json(
                Method::POST,
                &format!("{v3}/scopes"),
                Some(&json!({"name": format!("All {environment}"), "description": "Demo scope", "environment": environment, "properties": []})),
            )
            .await?;
        scopes.insert(environment, scope["id"].clone());
    }
    for (profile, environments) in ATTACHMENTS {
        let scope: Vec<Value> = environments
            .iter()
            .filter_map(|environment| scopes.get(environment))
            .map(|id| json!({"id": id}))
            .collect();
        let created = client
            .json(
                Method::POST,
                &format!("{v3}/profiles/{profile}/attachments"),
                Some(&json!({"attachments": [{
                    "name": format!("{profile} (demo)"), "description": "Built-in profile on the demo inventory",
                    "scope": scope, "schedule": "daily", "status": "enabled",
                    "notifications": {"enabled": true, "controls": {"threshold_limit": 10, "failed_control_ids": []}},
                    "attachment_parameters": [],
                }]})),
            )
            .await?;
        let attachment_id = created["attachments"][0]["id"].clone();
        client
            .json(
                Method::POST,
                &format!("{v3}/scans"),
                Some(&json!({"attachment_id": attachment_id})),
            )
            .await?;
    }
    eprintln!("demo: {} profiles attached and scanned", ATTACHMENTS.len());

    // Audit events: the CloudTrail attack dataset, one object per batch.
    let mut files: Vec<_> = CLOUDTRAIL
        .files()
        .filter(|file| {
            file.path()
                .extension()
                .is_some_and(|extension| extension == "json")
        })
        .collect();
    files.sort_by_key(|file| file.path());
    for file in &files {
        let name = file.path().display().to_string();
        client
            .upload(
                Method::POST,
                &format!("{v1}/activity/events?source={name}"),
                "application/json",
                file.contents().to_vec(),
            )
            .await?;
    }
    eprintln!("demo: {} CloudTrail objects ingested", files.len());

    // Flow logs: generated traffic with planted attacks, and the feed that names the bad hosts.
    let config = GeneratorConfig {
        background_records: flows,
        ..GeneratorConfig::default()
    };
    let mut text = Vec::new();
    let mut write_error = None;
    let traffic = generator::generate(&config, |record| {
        if write_error.is_none()
            && let Err(error) =
                palisade_logs::flow::aws::write_default_format_line(record, &mut text)
        {
            write_error = Some(error);
        }
    });
    if let Some(error) = write_error {
        return Err(error).context("generating flow logs");
    }
    let mut feed = String::from("ip,category,confidence\n");
    for indicator in &traffic.intel {
        feed.push_str(&format!(
            "{},{},{}\n",
            indicator.network, indicator.category, indicator.confidence
        ));
    }
    client
        .upload(
            Method::PUT,
            &format!("{v1}/network/intel/feeds/demo-feed?format=csv"),
            "text/csv",
            feed.into_bytes(),
        )
        .await?;
    client
        .upload(
            Method::POST,
            &format!("{v1}/network/flows?source=demo-vpc-flow-logs.log&flush=true&wait=true"),
            "text/plain",
            text,
        )
        .await?;
    // Everything queued is processed before the demo says it is ready.
    let batches = client
        .json(
            Method::GET,
            &format!("{v1}/activity/batches?limit=500"),
            None,
        )
        .await?;
    let pending = batches.as_array().map_or(0, |batches| {
        batches
            .iter()
            .filter(|batch| batch["status"] == "pending")
            .count()
    });
    if pending > 0 {
        for _ in 0..600 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let batches = client
                .json(
                    Method::GET,
                    &format!("{v1}/activity/batches?limit=500"),
                    None,
                )
                .await?;
            if batches
                .as_array()
                .is_none_or(|batches| batches.iter().all(|batch| batch["status"] != "pending"))
            {
                break;
            }
        }
    }
    eprintln!(
        "demo: {} flow records with {} planted attacks ingested",
        traffic.records,
        traffic.planted.len()
    );
    Ok(())
}
