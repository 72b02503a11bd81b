//! The providers posbridge has, in one table: each one's name, what it can do, and how it is
//! built from its `[providers.<name>]` section. Whoever needs the names or the capabilities
//! (the engine checking a request, the daemon building the configured providers) reads them
//! here. The table only builds providers; it contacts no backend and touches no journal.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use super::{iotpay, lifepay, paysera, phonepe, sim, Capabilities, Provider};
use crate::config::Config;
use crate::device::manager::DeviceManager;
use crate::device::screen::Screen;

/// What a provider's constructor may need besides its section.
pub struct Setup<'a> {
    pub config: &'a Config,
    pub state_dir: &'a Path,
    pub devices: &'a Arc<DeviceManager>,
    pub screen: &'a Arc<dyn Screen>,
}

/// Builds one provider from its section: `None` when the configuration has none.
pub type Build = fn(&Setup) -> Option<anyhow::Result<Arc<dyn Provider>>>;

/// One provider posbridge has.
pub struct Registered {
    pub name: &'static str,
    pub capabilities: Capabilities,
    pub build: Build,
}

const ALL: Capabilities = Capabilities {
    pay: true,
    refund: true,
    cancel: true,
    close_shift: true,
    abort: true,
};

/// Every provider, with its capabilities (docs/api.md repeats them for POS developers).
pub const PROVIDERS: &[Registered] = &[
    Registered {
        name: sim::NAME,
        capabilities: ALL,
        build: |s| {
            let sim = sim::Sim::open(s.state_dir, &s.config.providers.sim)
                .context("cannot open the sim backend");
            Some(sim.map(|p| Arc::new(p) as Arc<dyn Provider>))
        },
    },
    Registered {
        name: phonepe::NAME,
        capabilities: Capabilities {
            close_shift: false,
            ..ALL
        },
        build: |s| {
            let c = s.config.providers.phonepe.as_ref()?;
            let p = phonepe::PhonePe::new(c).context("cannot set up [providers.phonepe]");
            Some(p.map(|p| Arc::new(p) as Arc<dyn Provider>))
        },
    },
    Registered {
        name: iotpay::NAME,
        // No cancel call in document 002: an abort only reads the order (iotpay/abort.rs).
        capabilities: Capabilities {
            cancel: false,
            close_shift: false,
            ..ALL
        },
        build: |s| {
            let c = s.config.providers.iotpay.as_ref()?;
            let p = iotpay::IotPay::new(c).context("cannot set up [providers.iotpay]");
            Some(p.map(|p| Arc::new(p) as Arc<dyn Provider>))
        },
    },
    Registered {
        name: paysera::NAME,
        capabilities: Capabilities {
            refund: false, // providers.md: no refund of a confirmed transaction (paysera/mod.rs)
            close_shift: false,
            ..ALL
        },
        build: |s| {
            let c = s.config.providers.paysera.as_ref()?;
            let p = paysera::Paysera::new(c).context("cannot set up [providers.paysera]");
            Some(p.map(|p| Arc::new(p.with_screen(s.screen.clone())) as Arc<dyn Provider>))
        },
    },
    Registered {
        name: lifepay::NAME,
        capabilities: ALL,
        build: |s| {
            let c = s.config.providers.lifepay.as_ref()?;
            let p = lifepay::Lifepay::new(c, s.devices.clone())
                .context("cannot set up [providers.lifepay]");
            Some(p.map(|p| Arc::new(p) as Arc<dyn Provider>))
        },
    },
];

/// The capabilities of the provider named `name`; `None` for a name that is no provider.
pub fn known(name: &str) -> Option<Capabilities> {
    PROVIDERS
        .iter()
        .find(|p| p.name == name)
        .map(|p| p.capabilities)
}

/// Every provider the configuration asks for, ready to use. Fails (naming the section) when
/// one cannot be set up, e.g. a secret that cannot be read.
pub fn from_config(
    config: &Config,
    state_dir: &Path,
    devices: &Arc<DeviceManager>,
    screen: &Arc<dyn Screen>,
) -> anyhow::Result<Vec<Arc<dyn Provider>>> {
    let setup = Setup {
        config,
        state_dir,
        devices,
        screen,
    };
    PROVIDERS.iter().filter_map(|p| (p.build)(&setup)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::OpKind;

    #[test]
    fn capability_table_answers_for_every_provider() {
        assert!(known("sim").unwrap().supports(OpKind::CloseShift));
        assert!(!known("iotpay").unwrap().supports(OpKind::Cancel));
        assert!(!known("phonepe").unwrap().supports(OpKind::CloseShift));
        assert!(known("visa").is_none());
    }

    /// An abort (a cancel naming the pay by request_id only) is taken by every provider, also
    /// by iotpay, whose cancel with the pay's data is not.
    #[test]
    fn every_provider_takes_an_abort_and_iotpay_no_other_cancel() {
        let primary = |reference: Option<&str>| crate::provider::Primary {
            request_id: Some("sale-1".into()),
            provider: "iotpay".into(),
            provider_reference: reference.map(str::to_owned),
            amount: 100,
            currency: None,
            backend_id: None,
            pay_notes: Default::default(),
        };
        let (abort, void) = (primary(None), primary(Some("CP1")));
        for p in PROVIDERS {
            assert!(
                p.capabilities.takes(OpKind::Cancel, Some(&abort)),
                "{}",
                p.name
            );
        }
        let iotpay = known("iotpay").unwrap();
        assert!(!iotpay.takes(OpKind::Cancel, Some(&void)));
        assert!(known("sim").unwrap().takes(OpKind::Cancel, Some(&void)));
    }

    /// The config checks `default_provider` against the sections it reads; they must be
    /// exactly the providers here, in the same order (its message lists them).
    #[test]
    fn the_config_sections_are_the_registered_providers() {
        let names: Vec<&str> = PROVIDERS.iter().map(|p| p.name).collect();
        assert_eq!(names, crate::config::ProvidersConfig::SECTIONS);
    }
}
