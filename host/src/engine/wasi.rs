//! The WASI context a plugin runs in: empty (no environment, arguments, directories or network;
//! stdin closed), with stdout and stderr turned into log lines tagged with the plugin's name.
//! Which WASI interfaces a plugin may import at all is decided at load time by
//! [`super::capabilities`].

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};

/// Longest line forwarded to the log; longer output is cut into pieces of this size.
const MAX_LINE: usize = 4096;

/// A fresh context for one plugin instance.
pub fn context(plugin: &Arc<str>) -> WasiCtx {
    let mut builder = WasiCtxBuilder::new();
    builder
        .stdout(PluginOutput {
            plugin: plugin.clone(),
            stream: "stdout",
        })
        .stderr(PluginOutput {
            plugin: plugin.clone(),
            stream: "stderr",
        })
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    builder.build()
}

/// A plugin's stdout or stderr.
struct PluginOutput {
    plugin: Arc<str>,
    stream: &'static str,
}

impl IsTerminal for PluginOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for PluginOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineLogger {
            plugin: self.plugin.clone(),
            stream: self.stream,
            line: Vec::new(),
        })
    }
}

/// Collects bytes into lines and logs each complete line.
struct LineLogger {
    plugin: Arc<str>,
    stream: &'static str,
    line: Vec<u8>,
}

impl LineLogger {
    fn emit(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.line);
        tracing::info!(target: "tollgate::plugin", plugin = %self.plugin, stream = self.stream, "{}", text.trim_end());
        self.line.clear();
    }
}

impl AsyncWrite for LineLogger {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        for &b in buf {
            if b == b'\n' {
                self.emit();
            } else {
                self.line.push(b);
                if self.line.len() >= MAX_LINE {
                    self.emit();
                }
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.emit();
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineLogger {
    fn drop(&mut self) {
        self.emit();
    }
}
