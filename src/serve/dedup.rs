//! One active run per route and alert: Alertmanager delivers at least
//! once and sends a firing alert again every `repeat_interval`, so the
//! same remediation must not start twice. A key (route name, alert
//! fingerprint) is claimed before anything starts and released when the
//! run ends (or its proposal is denied or cancelled); a claim while the
//! key is held is refused with what holds it. The runbook's own `lock`
//! (taken by the session) refuses a second run of it from another route.

use std::collections::HashMap;
use std::sync::Mutex;

/// Route name and alert fingerprint.
pub type Key = (String, String);

/// What holds a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Active {
    /// Being validated and started.
    Starting,
    Run(String),
    /// A proposal waiting for approval (its id).
    Proposal(String),
}

impl std::fmt::Display for Active {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Active::Starting => f.write_str("a run being started"),
            Active::Run(id) => write!(f, "run {id}"),
            Active::Proposal(id) => write!(f, "proposal {id}"),
        }
    }
}

impl From<crate::store::postgres::serve::Holder> for Active {
    fn from(h: crate::store::postgres::serve::Holder) -> Active {
        match h {
            crate::store::postgres::serve::Holder::Run(id) => Active::Run(id),
            crate::store::postgres::serve::Holder::Proposal(id) => Active::Proposal(id),
        }
    }
}

#[derive(Debug, Default)]
pub struct Dedup {
    active: Mutex<HashMap<Key, Active>>,
}

impl Dedup {
    /// Claims `key` (as [`Active::Starting`]), or says what holds it.
    pub fn claim(&self, key: &Key) -> Result<(), Active> {
        let mut a = self.active.lock().map_err(|_| Active::Starting)?;
        if let Some(holder) = a.get(key) {
            return Err(holder.clone());
        }
        a.insert(key.clone(), Active::Starting);
        Ok(())
    }

    /// What now holds a claimed key.
    pub fn set(&self, key: &Key, holder: Active) {
        if let Ok(mut a) = self.active.lock() {
            a.insert(key.clone(), holder);
        }
    }

    /// Releases `key` if `holder` still holds it.
    pub fn release(&self, key: &Key, holder: &Active) {
        if let Ok(mut a) = self.active.lock() {
            if a.get(key) == Some(holder) {
                a.remove(key);
            }
        }
    }

    pub fn get(&self, key: &Key) -> Option<Active> {
        self.active.lock().ok()?.get(key).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_per_key() {
        let d = Dedup::default();
        let k = ("r".to_string(), "fp".to_string());
        d.claim(&k).unwrap();
        assert_eq!(d.claim(&k), Err(Active::Starting));
        d.set(&k, Active::Run("x".into()));
        assert_eq!(d.claim(&k), Err(Active::Run("x".into())));
        // A stale release (another holder) leaves it held.
        d.release(&k, &Active::Run("y".into()));
        assert!(d.get(&k).is_some());
        d.release(&k, &Active::Run("x".into()));
        d.claim(&k).unwrap();
        let other = ("r".to_string(), "fp2".to_string());
        d.claim(&other).unwrap();
    }
}
