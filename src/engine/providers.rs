//! The engine's providers as one snapshot: the configured providers by name and the default
//! one. A reload (`posbridge daemon` on SIGHUP) swaps the whole snapshot for new operations;
//! an operation keeps the `Arc` of the provider it was accepted with until it ends, and a
//! reconciliation of an older unknown outcome asks the provider configured now. This room only
//! holds and swaps; building providers from a configuration is `provider::registry`'s.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::Engine;
use crate::provider::Provider;

/// The configured providers and the default provider's name, as one unit.
pub struct Providers {
    by_name: HashMap<&'static str, Arc<dyn Provider>>,
    default: String,
}

impl Providers {
    pub fn new(providers: Vec<Arc<dyn Provider>>, default: String) -> Providers {
        Providers {
            by_name: providers.into_iter().map(|p| (p.name(), p)).collect(),
            default,
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Provider>> {
        self.by_name.get(name)
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn Provider>> {
        self.by_name.values()
    }

    /// The provider of a request that names none.
    pub fn default_name(&self) -> &str {
        &self.default
    }
}

/// Where the engine keeps its current snapshot.
pub(super) struct Current(RwLock<Arc<Providers>>);

impl Current {
    pub(super) fn new(providers: Providers) -> Current {
        Current(RwLock::new(Arc::new(providers)))
    }
}

impl Engine {
    /// The providers configured now (a snapshot: a reload does not change it under you).
    pub fn providers(&self) -> Arc<Providers> {
        self.providers
            .0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The provider named `name` as configured now.
    pub fn provider(&self, name: &str) -> Option<Arc<dyn Provider>> {
        self.providers().get(name).cloned()
    }

    /// Puts `new` in force for operations accepted from now on; running ones finish on the
    /// provider they started with.
    pub fn reload_providers(&self, new: Providers) {
        *self.providers.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(new);
    }
}
