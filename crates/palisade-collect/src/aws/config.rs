//! Where the AWS collector's credentials, region and endpoint come from, as every AWS tool
//! reads them: the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `AWS_REGION` / `AWS_DEFAULT_REGION`, `AWS_PROFILE`,
//! `AWS_ENDPOINT_URL`), then the profile in `~/.aws/credentials` and `~/.aws/config` (or
//! `AWS_SHARED_CREDENTIALS_FILE` / `AWS_CONFIG_FILE`). Explicit values (command-line flags, an
//! agent job's credential) win over both.
//!
//! Static keys, and profiles that assume a role (`role_arn` + `source_profile` with static keys,
//! optional `external_id`, `role_session_name`): the role is assumed with STS `AssumeRole` when
//! the collection starts ([`AssumeRole`]). Profiles that use SSO, a web identity, a
//! `credential_source` or run a `credential_process` are refused with a message saying so,
//! rather than silently collecting with other credentials.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// An access key, with the session token of temporary credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for AwsCredentials {
    // The secret never reaches logs.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"***")
            .field("session_token", &self.session_token.as_ref().map(|_| "***"))
            .finish()
    }
}

/// Everything [`super::collect_aws`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsConfig {
    pub credentials: AwsCredentials,
    /// Regions to collect; empty means every region enabled for the account
    /// (`DescribeRegions` in [`AwsConfig::home_region`]).
    pub regions: Vec<String>,
    /// The region of global services (IAM, S3 listing, STS) and of `DescribeRegions`.
    pub home_region: String,
    /// One endpoint for every service (an emulator, a VPC endpoint proxy); `None` for AWS's own.
    pub endpoint_url: Option<String>,
    /// How many regions are collected at once.
    pub concurrency: usize,
    /// A role to assume with `credentials` before collecting (the collection then runs with
    /// the role's temporary credentials).
    pub assume_role: Option<AssumeRole>,
}

/// An STS `AssumeRole` to make before collecting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeRole {
    pub role_arn: String,
    /// `RoleSessionName`, shown in the account's CloudTrail.
    pub session_name: String,
    pub external_id: Option<String>,
}

impl AssumeRole {
    /// The session name used when none is configured.
    pub const DEFAULT_SESSION_NAME: &'static str = "palisade-collector";

    /// A role to assume with the default session name and no external id.
    pub fn new(role_arn: impl Into<String>) -> Self {
        Self {
            role_arn: role_arn.into(),
            session_name: Self::DEFAULT_SESSION_NAME.to_owned(),
            external_id: None,
        }
    }
}

/// What the caller decided explicitly (flags, a job); each wins over the environment.
#[derive(Debug, Clone, Default)]
pub struct AwsOverrides {
    pub credentials: Option<AwsCredentials>,
    pub profile: Option<String>,
    pub regions: Vec<String>,
    pub endpoint_url: Option<String>,
    pub concurrency: Option<usize>,
}

/// Why no configuration could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwsConfigError {
    #[error(
        "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile with aws_access_key_id in ~/.aws/credentials"
    )]
    NoCredentials,
    #[error("AWS profile \"{profile}\" {reason}")]
    UnsupportedProfile { profile: String, reason: String },
    #[error("{file}: line {line}: {message}")]
    BadFile {
        file: String,
        line: usize,
        message: String,
    },
}

/// The environment and the two files, passed in so resolution is a pure function.
#[derive(Debug, Clone, Default)]
pub struct AwsEnvironment {
    pub variables: BTreeMap<String, String>,
    /// `(path, text)` of the shared credentials file, when it exists.
    pub credentials_file: Option<(String, String)>,
    /// `(path, text)` of the shared config file, when it exists.
    pub config_file: Option<(String, String)>,
}

impl AwsEnvironment {
    /// Reads this process's environment and the files it names (or `~/.aws/…`).
    pub fn from_process() -> Self {
        let variables: BTreeMap<String, String> = std::env::vars()
            .filter(|(name, _)| name.starts_with("AWS_") || name == "HOME")
            .collect();
        let home = variables.get("HOME").map(PathBuf::from);
        let read = |variable: &str, default: &str| {
            let path = variables
                .get(variable)
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|home| home.join(default)))?;
            let text = std::fs::read_to_string(&path).ok()?;
            Some((path.display().to_string(), text))
        };
        Self {
            credentials_file: read("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials"),
            config_file: read("AWS_CONFIG_FILE", ".aws/config"),
            variables,
        }
    }

    fn variable(&self, name: &str) -> Option<&str> {
        self.variables
            .get(name)
            .map(String::as_str)
            .filter(|value| !value.is_empty())
    }
}

/// Parses an AWS INI file into section → key → value (keys lower-cased; nested
/// `s3 =\n  key = value` blocks are skipped, as the collector needs none of them).
fn parse_ini(
    file: &str,
    text: &str,
) -> Result<BTreeMap<String, BTreeMap<String, String>>, AwsConfigError> {
    let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if raw.starts_with([' ', '\t']) {
            continue; // a nested sub-setting
        }
        if let Some(name) = line.strip_prefix('[') {
            let name = name
                .strip_suffix(']')
                .ok_or_else(|| AwsConfigError::BadFile {
                    file: file.to_owned(),
                    line: index + 1,
                    message: "section header without `]`".into(),
                })?;
            let name = name.trim().to_owned();
            sections.entry(name.clone()).or_default();
            current = Some(name);
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(AwsConfigError::BadFile {
                file: file.to_owned(),
                line: index + 1,
                message: "expected `key = value`".into(),
            });
        };
        if let Some(section) = &current {
            sections
                .entry(section.clone())
                .or_default()
                .insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    Ok(sections)
}

impl AwsConfig {
    /// Resolves the configuration: overrides, then the environment, then the profile.
    pub fn resolve(
        environment: &AwsEnvironment,
        overrides: &AwsOverrides,
    ) -> Result<Self, AwsConfigError> {
        let profile = overrides
            .profile
            .clone()
            .or_else(|| environment.variable("AWS_PROFILE").map(str::to_owned))
            .unwrap_or_else(|| "default".to_owned());
        let credentials_sections = match &environment.credentials_file {
            Some((file, text)) => parse_ini(file, text)?,
            None => BTreeMap::new(),
        };
        let config_sections = match &environment.config_file {
            Some((file, text)) => parse_ini(file, text)?,
            None => BTreeMap::new(),
        };
        let config_name = if profile == "default" {
            "default".to_owned()
        } else {
            format!("profile {profile}")
        };
        let empty = BTreeMap::new();
        let from_credentials = credentials_sections.get(&profile).unwrap_or(&empty);
        let from_config = config_sections.get(&config_name).unwrap_or(&empty);
        let setting = |key: &str| {
            from_credentials
                .get(key)
                .or_else(|| from_config.get(key))
                .filter(|value| !value.is_empty())
                .cloned()
        };

        let static_keys = |section: &BTreeMap<String, String>| match (
            section
                .get("aws_access_key_id")
                .filter(|value| !value.is_empty()),
            section
                .get("aws_secret_access_key")
                .filter(|value| !value.is_empty()),
        ) {
            (Some(access_key_id), Some(secret_access_key)) => Some(AwsCredentials {
                access_key_id: access_key_id.clone(),
                secret_access_key: secret_access_key.clone(),
                session_token: section
                    .get("aws_session_token")
                    .filter(|value| !value.is_empty())
                    .cloned(),
            }),
            _ => None,
        };
        let unsupported = |reason: &str| AwsConfigError::UnsupportedProfile {
            profile: profile.clone(),
            reason: reason.to_owned(),
        };
        let mut assume_role = None;
        let credentials = if let Some(credentials) = &overrides.credentials {
            credentials.clone()
        } else if let (Some(access_key_id), Some(secret_access_key)) = (
            environment.variable("AWS_ACCESS_KEY_ID"),
            environment.variable("AWS_SECRET_ACCESS_KEY"),
        ) {
            AwsCredentials {
                access_key_id: access_key_id.to_owned(),
                secret_access_key: secret_access_key.to_owned(),
                session_token: environment.variable("AWS_SESSION_TOKEN").map(str::to_owned),
            }
        } else if let Some(role_arn) = setting("role_arn") {
            // As the AWS CLI does: the role profile's own keys are ignored; the source
            // profile's keys assume the role.
            let Some(source) = setting("source_profile") else {
                return Err(unsupported(
                    "assumes a role without `source_profile` (a `credential_source`), which the collector does not support",
                ));
            };
            let source_config_name = if source == "default" {
                "default".to_owned()
            } else {
                format!("profile {source}")
            };
            let source_credentials = credentials_sections.get(&source).unwrap_or(&empty);
            let source_config = config_sections.get(&source_config_name).unwrap_or(&empty);
            if source_credentials.contains_key("role_arn") || source_config.contains_key("role_arn")
            {
                return Err(unsupported(&format!(
                    "assumes a role through `{source}`, which assumes another role: chained roles are not supported"
                )));
            }
            let keys = static_keys(source_credentials)
                .or_else(|| static_keys(source_config))
                .ok_or_else(|| {
                    unsupported(&format!(
                        "assumes a role with `source_profile = {source}`, which has no aws_access_key_id and aws_secret_access_key"
                    ))
                })?;
            assume_role = Some(AssumeRole {
                role_arn,
                session_name: setting("role_session_name")
                    .unwrap_or_else(|| AssumeRole::DEFAULT_SESSION_NAME.to_owned()),
                external_id: setting("external_id"),
            });
            keys
        } else if let (Some(access_key_id), Some(secret_access_key)) = (
            setting("aws_access_key_id"),
            setting("aws_secret_access_key"),
        ) {
            AwsCredentials {
                access_key_id,
                secret_access_key,
                session_token: setting("aws_session_token"),
            }
        } else {
            for (key, what) in [
                ("sso_session", "uses IAM Identity Center (SSO)"),
                ("sso_start_url", "uses IAM Identity Center (SSO)"),
                ("credential_process", "runs a credential_process"),
                ("web_identity_token_file", "uses a web identity token"),
            ] {
                if setting(key).is_some() {
                    return Err(unsupported(&format!(
                        "{what}, which the collector does not support: export static keys (e.g. `aws configure export-credentials --format env`)"
                    )));
                }
            }
            return Err(AwsConfigError::NoCredentials);
        };

        let home_region = environment
            .variable("AWS_REGION")
            .or_else(|| environment.variable("AWS_DEFAULT_REGION"))
            .map(str::to_owned)
            .or_else(|| setting("region"))
            .unwrap_or_else(|| "us-east-1".to_owned());
        let endpoint_url = overrides
            .endpoint_url
            .clone()
            .or_else(|| environment.variable("AWS_ENDPOINT_URL").map(str::to_owned))
            .or_else(|| setting("endpoint_url"))
            .map(|url| url.trim_end_matches('/').to_owned());
        Ok(Self {
            credentials,
            regions: overrides.regions.clone(),
            home_region,
            endpoint_url,
            concurrency: overrides.concurrency.unwrap_or(4).max(1),
            assume_role,
        })
    }

    /// Resolves from this process's environment and files.
    pub fn from_environment(overrides: &AwsOverrides) -> Result<Self, AwsConfigError> {
        Self::resolve(&AwsEnvironment::from_process(), overrides)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environment(variables: &[(&str, &str)]) -> AwsEnvironment {
        AwsEnvironment {
            variables: variables
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
            ..AwsEnvironment::default()
        }
    }

    #[test]
    fn environment_keys_win_over_profiles() {
        let mut env = environment(&[
            ("AWS_ACCESS_KEY_ID", "AKENV"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000/"),
        ]);
        env.credentials_file = Some((
            "credentials".into(),
            "[default]\naws_access_key_id = AKFILE\naws_secret_access_key = s\n".into(),
        ));
        let config = AwsConfig::resolve(&env, &AwsOverrides::default()).expect("resolves");
        assert_eq!(config.credentials.access_key_id, "AKENV");
        assert_eq!(config.home_region, "eu-west-1");
        assert_eq!(
            config.endpoint_url.as_deref(),
            Some("http://127.0.0.1:5000")
        );
    }

    #[test]
    fn named_profile_reads_both_files() {
        let mut env = environment(&[("AWS_PROFILE", "audit")]);
        env.credentials_file = Some((
            "credentials".into(),
            "[audit]\naws_access_key_id = AKAUDIT\naws_secret_access_key = s\naws_session_token = t\n"
                .into(),
        ));
        env.config_file = Some((
            "config".into(),
            "[profile audit]\nregion = ap-south-1\ns3 =\n  addressing_style = path\n".into(),
        ));
        let config = AwsConfig::resolve(&env, &AwsOverrides::default()).expect("resolves");
        assert_eq!(config.credentials.access_key_id, "AKAUDIT");
        assert_eq!(config.credentials.session_token.as_deref(), Some("t"));
        assert_eq!(config.home_region, "ap-south-1");
    }

    #[test]
    fn role_profiles_assume_the_role_with_the_source_profile_keys() {
        let mut env = environment(&[("AWS_PROFILE", "audit")]);
        env.credentials_file = Some((
            "credentials".into(),
            "[base]\naws_access_key_id = AKBASE\naws_secret_access_key = s\n".into(),
        ));
        env.config_file = Some((
            "config".into(),
            "[profile audit]\nrole_arn = arn:aws:iam::111111111111:role/audit\nsource_profile = base\n\
             external_id = ext-1\nregion = eu-central-1\n"
                .into(),
        ));
        let config = AwsConfig::resolve(&env, &AwsOverrides::default()).expect("resolves");
        assert_eq!(config.credentials.access_key_id, "AKBASE");
        assert_eq!(config.home_region, "eu-central-1");
        assert_eq!(
            config.assume_role,
            Some(AssumeRole {
                role_arn: "arn:aws:iam::111111111111:role/audit".into(),
                session_name: AssumeRole::DEFAULT_SESSION_NAME.into(),
                external_id: Some("ext-1".into()),
            })
        );
    }

    #[test]
    fn unsupported_role_profiles_are_refused_by_name() {
        let mut env = environment(&[]);
        env.config_file = Some((
            "config".into(),
            "[default]\nrole_arn = arn:aws:iam::1:role/x\ncredential_source = Ec2InstanceMetadata\n\
             [profile chained]\nrole_arn = arn:aws:iam::1:role/y\nsource_profile = default\n\
             [profile keyless]\nrole_arn = arn:aws:iam::1:role/z\nsource_profile = nobody\n"
                .into(),
        ));
        let error = AwsConfig::resolve(&env, &AwsOverrides::default()).expect_err("refused");
        assert!(error.to_string().contains("credential_source"), "{error}");
        for (profile, expected) in [
            ("chained", "chained roles"),
            ("keyless", "no aws_access_key_id"),
        ] {
            let overrides = AwsOverrides {
                profile: Some(profile.into()),
                ..AwsOverrides::default()
            };
            let error = AwsConfig::resolve(&env, &overrides).expect_err("refused");
            assert!(error.to_string().contains(expected), "{profile}: {error}");
        }
        let error = AwsConfig::resolve(&environment(&[]), &AwsOverrides::default())
            .expect_err("no credentials");
        assert_eq!(error, AwsConfigError::NoCredentials);
    }

    #[test]
    fn bad_ini_lines_are_named() {
        let mut env = environment(&[]);
        env.credentials_file = Some(("creds".into(), "[default\n".into()));
        let error = AwsConfig::resolve(&env, &AwsOverrides::default()).expect_err("bad");
        assert_eq!(
            error.to_string(),
            "creds: line 1: section header without `]`"
        );
    }
}
