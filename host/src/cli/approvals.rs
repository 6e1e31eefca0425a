//! `tollgate approvals`: the operator's side of human approval. Requests are read from and
//! decided in the state store every proxy of the machine (sqlite) or fleet (Redis) shares, so a
//! request raised by any proxy can be decided here; the agent's retry then goes through once.

use anyhow::{bail, Result};
use std::fmt::Write as _;
use tollgate::approval::{self, Approval, State};

/// What to do with approval requests.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ApprovalsCommand {
    /// The most recent requests, newest first (pending ones at the top of their list).
    List {
        #[command(flatten)]
        store: StoreArg,
        /// Only requests still waiting for a decision.
        #[arg(long)]
        pending: bool,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// One JSON object per request instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One request in full: what is asked, of which call, and where it stands.
    Show {
        /// The request's id (`ap-…`).
        id: String,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Approve a pending request: the agent's next call with exactly these arguments goes
    /// through, once.
    Approve(Decide),
    /// Refuse a pending request: the agent is told, and calling again asks again.
    Deny(Decide),
}

/// The store the proxies share.
#[derive(Debug, clap::Args)]
pub(crate) struct StoreArg {
    /// The state store the proxies share (as `tollgate run --state`).
    #[arg(long, env = "TOLLGATE_STATE", default_value = "sqlite")]
    pub(crate) state: String,
}

/// A decision on one request.
#[derive(Debug, clap::Args)]
pub(crate) struct Decide {
    /// The request's id (`ap-…`).
    id: String,
    /// Who decides, as the audit log and the request record it (default: $USER).
    #[arg(long = "as", value_name = "NAME")]
    by: Option<String>,
    #[command(flatten)]
    store: StoreArg,
}

pub(crate) async fn dispatch(command: ApprovalsCommand) -> Result<i32> {
    match command {
        ApprovalsCommand::List {
            store,
            pending,
            limit,
            json,
        } => {
            let state = super::open_state(&store.state)?;
            let requests = approval::list(approvals_of(&*state)?, limit).await?;
            let now = tollgate::state::now_ms();
            let shown = requests
                .iter()
                .filter(|a| !pending || (a.state == State::Pending && now < a.expires_ms));
            if json {
                for a in shown {
                    println!("{}", serde_json::to_string(a)?);
                }
            } else {
                print!("{}", table(shown, now));
            }
            Ok(0)
        }
        ApprovalsCommand::Show { id, store } => {
            let state = super::open_state(&store.state)?;
            match approval::get(approvals_of(&*state)?, &id).await? {
                Some(a) => {
                    print!("{}", details(&a, tollgate::state::now_ms()));
                    Ok(0)
                }
                None => bail!("no approval request `{id}` in {}", state.describe()),
            }
        }
        ApprovalsCommand::Approve(d) => decide(d, true).await,
        ApprovalsCommand::Deny(d) => decide(d, false).await,
    }
}

fn approvals_of(
    state: &dyn tollgate::state::CounterStore,
) -> Result<&dyn tollgate::state::ApprovalStore> {
    match state.approvals() {
        Some(a) => Ok(a),
        None => bail!("{} keeps no approval requests", state.describe()),
    }
}

async fn decide(d: Decide, approve: bool) -> Result<i32> {
    let state = super::open_state(&d.store.state)?;
    if state.describe() == "memory" {
        bail!("a memory store lives inside one proxy; decide its requests with the proxy's store (--state sqlite or redis://…)");
    }
    let by =
        d.by.or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "operator".into());
    let now = tollgate::state::now_ms();
    let a = approval::decide(approvals_of(&*state)?, &d.id, approve, &by, "operator", now).await?;
    let verb = if approve { "approved" } else { "refused" };
    eprintln!(
        "tollgate: {verb} {} ({} on {}): {}{}",
        a.id,
        a.tool,
        a.server,
        a.message,
        if approve {
            format!(
                " — the agent's next call with these arguments goes through once, within {} s",
                a.timeout_ms / 1000
            )
        } else {
            String::new()
        }
    );
    Ok(0)
}

/// How a request stands now, in words (`pending, 540 s left`).
fn standing(a: &Approval, now: u64) -> String {
    let left = a.expires_ms.saturating_sub(now).div_ceil(1000);
    match &a.state {
        State::Pending if now < a.expires_ms => format!("pending, {left} s left"),
        State::Approved(d) if now < a.expires_ms => {
            format!("approved by {}, unused, {left} s left", d.by)
        }
        State::Pending | State::Approved(_) => "expired".into(),
        State::Denied(d) => format!("denied by {}", d.by),
        State::Used { decided, .. } => format!("used (approved by {})", decided.by),
        State::Expired { .. } => "expired".into(),
    }
}

fn table<'a>(requests: impl Iterator<Item = &'a Approval>, now: u64) -> String {
    let mut out = String::new();
    let mut any = false;
    for a in requests {
        if !any {
            let _ = writeln!(
                out,
                "{:<13}  {:<34}  {:<20}  {:<16}  MESSAGE",
                "ID", "STATE", "SERVER/TOOL", "CALLER"
            );
            any = true;
        }
        let _ = writeln!(
            out,
            "{:<13}  {:<34}  {:<20}  {:<16}  {}",
            a.id,
            standing(a, now),
            format!("{}/{}", a.server, a.tool),
            a.caller,
            a.message
        );
    }
    if !any {
        out.push_str("no approval requests\n");
    }
    out
}

fn details(a: &Approval, now: u64) -> String {
    format!(
        "id:         {}\nstate:      {}\nasks:       {}\nserver:     {}\ntool:       {}\ncaller:     {}\nrule:       {}\narguments:  {}\n            (sha256 {} as canonical JSON)\nasked at:   {}\n",
        a.id,
        standing(a, now),
        a.message,
        a.server,
        a.tool,
        a.caller,
        a.rule,
        a.arguments,
        a.arguments_sha256,
        tollgate::audit::rfc3339(std::time::Duration::from_millis(a.made_ms))
    )
}
