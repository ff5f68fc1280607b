//! Test helpers: the same test runs against the memory backends and against files +
//! SQLite in a temporary directory that is removed afterwards.

#![allow(dead_code)]

use std::path::PathBuf;

use persist::{PersistClient, PersistConfig, PersistLocation, Update};
use repr::{Datum, Row};

/// One backend configuration under test.
pub struct TestEnv {
    pub name: &'static str,
    pub location: PersistLocation,
    pub dir: Option<PathBuf>,
}

impl TestEnv {
    pub fn mem() -> Self {
        TestEnv {
            name: "mem",
            location: PersistLocation::mem(&uuid::Uuid::new_v4().to_string()),
            dir: None,
        }
    }

    pub fn files() -> Self {
        let dir =
            std::env::temp_dir().join(format!("freshet-persist-test-{}", uuid::Uuid::new_v4()));
        TestEnv {
            name: "file+sqlite",
            location: PersistLocation::local(&dir),
            dir: Some(dir),
        }
    }

    /// A client without compaction, so tests control the batch layout.
    pub fn client(&self) -> PersistClient {
        self.client_with(no_compaction())
    }

    pub fn client_with(&self, config: PersistConfig) -> PersistClient {
        PersistClient::open_with_config(&self.location, config).expect("opening the test location")
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Runs `test` on both backends; a failure names the backend.
pub fn each_backend(test: impl Fn(&TestEnv)) {
    for env in [TestEnv::mem(), TestEnv::files()] {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| test(&env)));
        if let Err(panic) = result {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("on the {} backend: {message}", env.name);
        }
    }
}

pub fn no_compaction() -> PersistConfig {
    PersistConfig {
        compaction_enabled: false,
        ..PersistConfig::default()
    }
}

pub fn row(i: i64) -> Row {
    Row::pack_slice(&[Datum::Int64(i)])
}

pub fn update(i: i64, time: u64, diff: i64) -> Update {
    (row(i), time, diff)
}
