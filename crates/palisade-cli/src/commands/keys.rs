//! `palisade keys create|list|revoke`: manages the API keys of a running server.

use std::process::ExitCode;

use palisade_client::Client;
use palisade_model::tenancy::Role;

/// Where the server is and which key to use.
#[derive(Debug, clap::Args)]
pub struct Connection {
    /// The server's base URL.
    #[arg(long, env = "PALISADE_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// An admin API key of the instance.
    #[arg(long, env = "PALISADE_KEY", hide_env_values = true)]
    pub key: String,
}

/// Subcommands of `palisade keys`.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Creates a key and prints its secret (shown once).
    Create {
        #[command(flatten)]
        connection: Connection,
        /// What the key is for.
        #[arg(long)]
        name: String,
        /// admin, editor, viewer, collector or ingest.
        #[arg(long)]
        role: Role,
        /// Print the created key as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Lists the instance's keys, without secrets.
    List {
        #[command(flatten)]
        connection: Connection,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revokes a key; it stops working at once.
    Revoke {
        #[command(flatten)]
        connection: Connection,
        /// The id of the key to revoke.
        key_id: String,
    },
}

pub fn run(command: KeysCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match command {
            KeysCommand::Create {
                connection,
                name,
                role,
                json,
            } => {
                let created = client(&connection)?.create_key(&name, role).await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&created)?);
                } else {
                    println!("key_id: {}", created.key.id);
                    println!("role: {}", created.key.role);
                    println!("key: {}", created.secret);
                    eprintln!("store the key now: it cannot be shown again");
                }
            }
            KeysCommand::List { connection, json } => {
                let keys = client(&connection)?.list_keys().await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&keys)?);
                } else {
                    let mut table = comfy_table::Table::new();
                    table.load_preset(comfy_table::presets::UTF8_BORDERS_ONLY);
                    table.set_header(["id", "name", "role", "created", "revoked"]);
                    for key in keys {
                        table.add_row([
                            key.id,
                            key.name,
                            key.role.to_string(),
                            key.created_at.to_rfc3339(),
                            key.revoked_at.map(|at| at.to_rfc3339()).unwrap_or_default(),
                        ]);
                    }
                    println!("{table}");
                }
            }
            KeysCommand::Revoke { connection, key_id } => {
                client(&connection)?.revoke_key(&key_id).await?;
                println!("revoked {key_id}");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn client(connection: &Connection) -> anyhow::Result<Client> {
    Ok(Client::new(&connection.server, &connection.key)?)
}
