//! The jobs the server hands an agent, and running one with this crate's collectors.
//!
//! A job is a target of the collector (`kind` `aws`, `host` or `import`, an interval) with its
//! credential opened by the server. Credentials stay in memory: they are never written to the
//! agent's state directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::aws::{AssumeRole, AwsConfig, AwsCredentials, collect_aws};
use crate::host::ssh::{SshTarget, collect_host_over_ssh};
use crate::host::{HostConfig, collect_host};
use crate::import::{ImportKind, ImportOptions, import};
use crate::{CollectionError, CollectionOutput, NoProgress};

/// What a job collects.
#[derive(Clone, PartialEq)]
pub enum JobKind {
    Aws(Box<AwsConfig>),
    Host(HostConfig),
    /// Another machine over SSH.
    Ssh {
        target: SshTarget,
        account_id: String,
    },
    Import {
        kind: ImportKind,
        paths: Vec<PathBuf>,
        account_id: String,
    },
    /// The server could not prepare the job (a credential is gone): reported, not run.
    Unavailable(String),
}

impl std::fmt::Debug for JobKind {
    // Credentials never reach logs (AwsConfig's own Debug masks the secret).
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobKind::Aws(config) => write!(formatter, "Aws({:?})", config.regions),
            JobKind::Host(config) => write!(formatter, "Host({})", config.root.display()),
            JobKind::Ssh { target, .. } => write!(formatter, "Ssh({target:?})"),
            JobKind::Import { kind, paths, .. } => {
                write!(formatter, "Import({}, {paths:?})", kind.name())
            }
            JobKind::Unavailable(reason) => write!(formatter, "Unavailable({reason})"),
        }
    }
}

/// One job: a target and how often to run it.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub target_id: String,
    pub interval: Duration,
    pub kind: JobKind,
}

fn text(job: &Value, key: &str) -> Option<String> {
    job.get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .filter(|text| !text.is_empty())
}

fn strings(job: &Value, key: &str) -> Vec<String> {
    job.get(key)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

impl Job {
    /// Reads a job as the server sends it; a job this agent cannot run is an error naming the
    /// target. `state_dir` holds the known-hosts file of SSH jobs.
    pub fn from_json(job: &Value, state_dir: &Path) -> Result<Self, String> {
        let target_id = text(job, "id").ok_or("a job without an `id`")?;
        let interval = Duration::from_secs(
            job.get("interval_seconds")
                .and_then(Value::as_u64)
                .unwrap_or(3600)
                .max(1),
        );
        let account_id = text(job, "account_id").unwrap_or_default();
        let kind = if let Some(error) = text(job, "error") {
            JobKind::Unavailable(error)
        } else {
            match job.get("kind").and_then(Value::as_str) {
                Some("host") if job.get("credential").is_some() => JobKind::Ssh {
                    target: ssh_target(&target_id, job, state_dir)?,
                    account_id,
                },
                Some("host") => {
                    let root = PathBuf::from(text(job, "root").unwrap_or_else(|| "/".into()));
                    JobKind::Host(HostConfig {
                        run_commands: root == std::path::Path::new("/"),
                        root,
                        account_id,
                    })
                }
                Some("import") => {
                    let kind = text(job, "import_kind")
                        .ok_or_else(|| format!("target {target_id}: no `import_kind`"))?
                        .parse::<ImportKind>()
                        .map_err(|error| format!("target {target_id}: {error}"))?;
                    JobKind::Import {
                        kind,
                        paths: strings(job, "paths")
                            .into_iter()
                            .map(PathBuf::from)
                            .collect(),
                        account_id,
                    }
                }
                Some("aws") => JobKind::Aws(Box::new(aws_config(&target_id, job)?)),
                other => {
                    return Err(format!(
                        "target {target_id}: this agent cannot run jobs of kind {other:?}"
                    ));
                }
            }
        };
        Ok(Self {
            target_id,
            interval,
            kind,
        })
    }

    /// The job's kind as the server names it.
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            JobKind::Aws(_) => "aws",
            JobKind::Host(_) | JobKind::Ssh { .. } => "host",
            JobKind::Import { .. } => "import",
            JobKind::Unavailable(_) => "unavailable",
        }
    }

    /// Runs the job; blocking collectors run on tokio's blocking threads.
    pub async fn run(&self, collected_at: DateTime<Utc>) -> CollectionOutput {
        match &self.kind {
            JobKind::Aws(config) => collect_aws(config, &NoProgress, collected_at).await,
            JobKind::Host(config) => {
                let config = config.clone();
                tokio::task::spawn_blocking(move || collect_host(&config, collected_at))
                    .await
                    .unwrap_or_else(|error| {
                        failed("host", format!("the collector failed: {error}"))
                    })
            }
            JobKind::Ssh { target, account_id } => {
                let (target, account_id) = (target.clone(), account_id.clone());
                tokio::task::spawn_blocking(move || {
                    collect_host_over_ssh(&target, &account_id, collected_at)
                })
                .await
                .unwrap_or_else(|error| failed("ssh", format!("the collector failed: {error}")))
            }
            JobKind::Import {
                kind,
                paths,
                account_id,
            } => {
                let (kind, paths) = (*kind, paths.clone());
                let options = ImportOptions {
                    collected_at,
                    account_id: account_id.clone(),
                };
                tokio::task::spawn_blocking(move || {
                    let mut output = CollectionOutput::default();
                    for path in &paths {
                        let source = path.display().to_string();
                        match std::fs::read(path) {
                            Ok(bytes) => output.extend(import(
                                kind,
                                &source,
                                &String::from_utf8_lossy(&bytes),
                                &options,
                            )),
                            Err(error) => output.errors.push(CollectionError::new(
                                source,
                                None,
                                format!("cannot read: {error}"),
                            )),
                        }
                    }
                    output
                })
                .await
                .unwrap_or_else(|error| failed("import", format!("the importer failed: {error}")))
            }
            JobKind::Unavailable(reason) => failed("job", reason.clone()),
        }
    }
}

fn failed(source: &str, message: String) -> CollectionOutput {
    CollectionOutput {
        resources: Vec::new(),
        errors: vec![CollectionError::new(source, None, message)],
    }
}

/// Where an SSH host job connects: the `user_name_pem` credential's `host`, `port` (22) and
/// `username`, with its key.
fn ssh_target(target_id: &str, job: &Value, state_dir: &Path) -> Result<SshTarget, String> {
    let credential = job.get("credential").unwrap_or(&Value::Null);
    let field = |key: &str| text(credential, key);
    if field("passphrase").is_some() {
        return Err(format!(
            "target {target_id}: SSH keys with a passphrase are not supported (ssh runs unattended)"
        ));
    }
    let (Some(host), Some(user), Some(private_key)) =
        (field("host"), field("username"), field("pem"))
    else {
        return Err(format!(
            "target {target_id}: an SSH host job needs a user_name_pem credential with host, username and pem"
        ));
    };
    let port = match credential.get("port") {
        None | Some(Value::Null) => 22,
        Some(Value::String(text)) => text.parse().map_err(|_| {
            format!("target {target_id}: the credential's port `{text}` is not a port")
        })?,
        Some(other) => other
            .as_u64()
            .and_then(|port| u16::try_from(port).ok())
            .ok_or_else(|| format!("target {target_id}: the credential's port is not a port"))?,
    };
    Ok(SshTarget {
        host,
        port,
        user,
        private_key,
        known_hosts: state_dir.join("known_hosts"),
    })
}

/// The AWS configuration of a job from its `aws_cloud` credential: keys, home region, endpoint.
fn aws_config(target_id: &str, job: &Value) -> Result<AwsConfig, String> {
    let credential = job
        .get("credential")
        .ok_or_else(|| format!("target {target_id}: an aws job without its credential"))?;
    let field = |key: &str| text(credential, key);
    let (Some(access_key_id), Some(secret_access_key)) =
        (field("access_key_id"), field("secret_access_key"))
    else {
        return Err(format!(
            "target {target_id}: the credential has no access key id or secret"
        ));
    };
    Ok(AwsConfig {
        credentials: AwsCredentials {
            access_key_id,
            secret_access_key,
            session_token: field("session_token"),
        },
        regions: strings(job, "regions"),
        home_region: field("region").unwrap_or_else(|| "us-east-1".into()),
        endpoint_url: field("endpoint_url").map(|url| url.trim_end_matches('/').to_owned()),
        concurrency: 4,
        assume_role: field("role_arn").map(AssumeRole::new),
    })
}

/// The result of one run, as the heartbeat reports it.
pub fn job_result(
    job: &Job,
    started_at: DateTime<Utc>,
    output: &CollectionOutput,
    batches: usize,
    spool_error: Option<&str>,
) -> Value {
    let status = match (output.resources.is_empty(), output.errors.is_empty()) {
        _ if spool_error.is_some() => "failed",
        (_, true) => "succeeded",
        (false, false) => "partial",
        (true, false) => "failed",
    };
    let mut messages: Vec<String> = output
        .errors
        .iter()
        .take(10)
        .map(|error| error.to_string().chars().take(500).collect())
        .collect();
    if let Some(error) = spool_error {
        messages.insert(0, format!("spooling failed: {error}"));
    }
    json!({
        "target_id": job.target_id,
        "kind": job.kind_name(),
        "started_at": started_at,
        "finished_at": Utc::now(),
        "status": status,
        "resources": output.resources.len(),
        "errors": output.errors.len(),
        "batches": batches,
        "messages": messages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(value: Value) -> Result<Job, String> {
        Job::from_json(&value, Path::new("/state"))
    }

    #[test]
    fn ssh_host_jobs_connect_with_the_credential() {
        let ssh = job(
            json!({"id": "s1", "kind": "host", "credential": {"type": "user_name_pem",
            "username": "audit", "pem": "KEY", "host": "10.0.0.5", "port": "2222"}}),
        )
        .expect("ssh");
        match &ssh.kind {
            JobKind::Ssh { target, .. } => {
                assert_eq!(
                    (target.host.as_str(), target.port, target.user.as_str()),
                    ("10.0.0.5", 2222, "audit")
                );
                assert_eq!(target.known_hosts, Path::new("/state/known_hosts"));
            }
            other => panic!("{other:?}"),
        }
        assert!(!format!("{ssh:?}").contains("KEY"), "no key in Debug");
        let locked = job(
            json!({"id": "s2", "kind": "host", "credential": {"username": "a", "pem": "K",
            "host": "h", "passphrase": "p"}}),
        )
        .expect_err("passphrase");
        assert!(locked.contains("passphrase"), "{locked}");
    }

    #[test]
    fn jobs_are_read_from_the_server_shape() {
        let host = job(json!({"id": "t1", "kind": "host", "interval_seconds": 5})).expect("host");
        assert_eq!(host.interval, Duration::from_secs(5));
        assert!(matches!(&host.kind, JobKind::Host(config) if config.run_commands));
        let import = job(
            json!({"id": "t2", "kind": "import", "import_kind": "kubernetes",
            "paths": ["/x.yaml"], "account_id": "prod"}),
        )
        .expect("import");
        assert!(
            matches!(&import.kind, JobKind::Import { kind: ImportKind::Kubernetes, paths, account_id } if paths.len() == 1 && account_id == "prod")
        );
        let aws = job(json!({"id": "t3", "kind": "aws", "regions": ["eu-west-1"],
            "credential": {"type": "aws_cloud", "access_key_id": "AK", "secret_access_key": "s", "region": "eu-west-1",
                "endpoint_url": "http://127.0.0.1:5000/"}}))
        .expect("aws");
        match &aws.kind {
            JobKind::Aws(config) => {
                assert_eq!(config.home_region, "eu-west-1");
                assert_eq!(
                    config.endpoint_url.as_deref(),
                    Some("http://127.0.0.1:5000")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(!format!("{aws:?}").contains("\"s\""), "no secret in Debug");
        let role = job(json!({"id": "t6", "kind": "aws", "credential": {"access_key_id": "AK",
            "secret_access_key": "s", "region": "us-east-1", "role_arn": "arn:aws:iam::1:role/audit"}}))
        .expect("role");
        assert!(
            matches!(&role.kind, JobKind::Aws(config) if config.assume_role.as_ref().is_some_and(|role| role.role_arn.ends_with("role/audit")))
        );
        let gone =
            job(json!({"id": "t4", "kind": "aws", "error": "credential gone"})).expect("reported");
        assert!(matches!(gone.kind, JobKind::Unavailable(_)));
        let error = job(json!({"id": "t5", "kind": "vmware"})).expect_err("unknown");
        assert!(error.contains("t5"), "{error}");
    }
}
