//! `tollgate scan`: a starter policy from a server's tools; and the server arguments `scan` and
//! `pin` share.

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::time::Duration;
use tollgate::transport::remote::RemoteOptions;
use tollgate::transport::server::ServerAddress;

#[derive(Debug, clap::Args)]
pub(crate) struct ScanArgs {
    /// Write the policy to this file instead of stdout.
    #[arg(long, short)]
    output: Option<PathBuf>,
    #[command(flatten)]
    server: ServerArgs,
}

/// Which MCP server `scan` and `pin` ask for its tools.
#[derive(Debug, clap::Args)]
pub(crate) struct ServerArgs {
    /// Seconds to wait for each of the server's answers.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Scan a remote server at this Streamable HTTP endpoint instead of starting a COMMAND.
    #[arg(long, value_name = "URL", conflicts_with = "command")]
    url: Option<String>,
    /// A header sent with every request to --url (`Name: value`, `$VAR` expanded). Repeatable.
    #[arg(long, value_name = "NAME: VALUE", requires = "url")]
    header: Vec<String>,
    /// The MCP server's command and arguments, after `--`.
    #[arg(last = true, required_unless_present = "url")]
    command: Vec<String>,
}

/// Ask the server `args` names for its tools; what it listed and how to name it to a reader.
pub(crate) async fn scan_server(args: &ServerArgs) -> Result<(tollgate::scan::Scan, String)> {
    let timeout = Duration::from_secs(args.timeout.max(1));
    let address = match &args.url {
        Some(url) => ServerAddress::Url(RemoteOptions {
            url: url.clone(),
            headers: args
                .header
                .iter()
                .map(|h| super::upstream_header(h))
                .collect::<Result<Vec<_>>>()?,
            timeout,
        }),
        None => ServerAddress::command(args.command.clone()),
    };
    let found = tollgate::scan::scan(&address, timeout).await?;
    Ok((found, address.to_string()))
}

pub(crate) async fn scan(args: ScanArgs) -> Result<()> {
    let (found, source) = scan_server(&args.server).await?;
    let policy = tollgate::scan::starter_policy(&found, &source);
    match &args.output {
        Some(path) => {
            std::fs::write(path, &policy)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "tollgate: wrote a starter policy for {} tool{} to {}",
                found.tools.len(),
                if found.tools.len() == 1 { "" } else { "s" },
                path.display()
            );
        }
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(policy.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(())
}
