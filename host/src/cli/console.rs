//! `tollgate console`: the operator's page for the proxies of this machine (stdio proxies have
//! no listener of their own), on loopback only, for a token made at start and printed with the
//! address.

use super::approvals::StoreArg;
use anyhow::{bail, Context, Result};
use std::net::SocketAddr;
use tollgate::console::Console;
use tollgate::proxy::http::{self, Access, Token};

/// `tollgate console`.
#[derive(Debug, clap::Args)]
pub(crate) struct ConsoleArgs {
    /// Where to serve the page (a loopback address; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:7411", value_name = "ADDR")]
    listen: SocketAddr,
    /// Who decides approval requests from the page, as the audit log and the request record
    /// it (default: $USER).
    #[arg(long = "as", value_name = "NAME")]
    by: Option<String>,
    #[command(flatten)]
    store: StoreArg,
}

/// Serve the console until interrupted.
pub(crate) async fn console(args: ConsoleArgs) -> Result<i32> {
    if !args.listen.ip().is_loopback() {
        bail!(
            "--listen {}: the console serves loopback addresses only (it can approve calls)",
            args.listen
        );
    }
    let by = args
        .by
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "operator".into());
    let store = super::open_state(&args.store.state)?;
    if store.describe() == "memory" {
        bail!("a memory store lives inside one proxy; show the proxies' shared store (--state sqlite or redis://…)");
    }
    let home = tollgate::state::home().context("no state directory to read the proxies from")?;
    let console = Console::new(
        store,
        tollgate::audit::decisions::default_dir(),
        Console::wrapped_servers(home),
    );
    let secret = tollgate::console::new_token();
    let access = Access {
        tokens: vec![Token {
            caller: by.clone(),
            secret: secret.clone(),
        }],
        loopback: true,
        approvers: vec![by],
        ..Access::default()
    };
    let bound = http::console::serve(args.listen, console, access).await?;
    println!("tollgate: console on http://{bound}/console#token={secret}");
    tokio::signal::ctrl_c().await?;
    Ok(0)
}
