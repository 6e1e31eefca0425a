//! Sessions: pumping messages between the agent and the server, intercepting what policy
//! decides.

pub mod colocate;
pub mod http;
pub mod session;
pub mod stdio;

pub use session::{denial_response, Release, Routed, Session};
