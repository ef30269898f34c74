//! How backend host names become addresses: the system resolver unless an embedder (or a test) supplies its own.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

/// A name lookup that answers at once (a table, a service registry's cache).
type Lookup = dyn Fn(&str, u16) -> std::io::Result<Vec<SocketAddr>> + Send + Sync;

/// Resolves a backend's host name to the addresses its exports are spread over, again every
/// `backend_resolve_interval`. The default is the system resolver (`getaddrinfo`: /etc/hosts, then DNS, read afresh
/// on every lookup); [`Resolver::from_fn`] puts a table in its place, which is how the tests give a name several
/// loopback addresses and change them, without editing /etc/hosts.
#[derive(Clone, Default)]
pub struct Resolver(Option<Arc<Lookup>>);

impl Resolver {
    /// The system resolver.
    pub fn system() -> Resolver {
        Resolver(None)
    }

    /// A resolver that asks `lookup(host, port)`; an error or an empty answer keeps the addresses known before.
    pub fn from_fn(lookup: impl Fn(&str, u16) -> std::io::Result<Vec<SocketAddr>> + Send + Sync + 'static) -> Resolver {
        Resolver(Some(Arc::new(lookup)))
    }

    /// The addresses of `host:port` now.
    pub(crate) async fn lookup(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        match &self.0 {
            None => Ok(tokio::net::lookup_host((host, port)).await?.collect()),
            Some(lookup) => lookup(host, port),
        }
    }
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() { "Resolver(custom)" } else { "Resolver(system)" })
    }
}
