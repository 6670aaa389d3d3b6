//! `fxpd user quota-scan NAME`: recount what a user's home holds and write it as the user's
//! quota usage, on the file system (`--root`) or on the back-end the server's configuration
//! names (`--config`, for `storage.kind = "s3"`).
//!
//! On S3 the home is the user's key prefix (`storage.prefix`, then the home relative to
//! `root`), walked one directory level at a time through the same listing the server uses
//! for LIST (paginated by the S3 client): every object that is not a directory marker counts
//! as a file, its size as its bytes, as the server charges an upload. The walk is bounded:
//! at most [`MAX_OBJECTS`] entries in all, and a directory whose listing reaches the
//! listing's cap ([`LISTING_CAP`]) stops the scan with an error, since its count could be
//! short, and a short count would let the user past the quota. Nothing is written unless the
//! whole walk succeeds.

use fxpd::auth::admin::{self, AdminError};
use fxpd::auth::quota::Usage;
use fxpd::config::{self, Overrides, StorageKind};
use fxpd::listing::Kind;
use fxpd::storage::Backend;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Most entries (objects and directories) one scan walks.
pub const MAX_OBJECTS: u64 = 10_000_000;
/// The most entries the object listing returns for one directory (the server's LIST cap): a
/// directory that reaches it may hold more than the listing showed.
pub const LISTING_CAP: usize = fxpd::storage::MAX_LIST_ENTRIES;

/// Recounts `name`'s home and writes the usage next to the users file `users`. With
/// `config`, that configuration's `[storage]` and `root` (overridden by `root` if given)
/// decide where the files are; without it, `root` on the file system.
pub fn run(
    users: &Path,
    name: &str,
    root: Option<PathBuf>,
    config: Option<&Path>,
) -> Result<Usage, AdminError> {
    let Some(config_file) = config else {
        let root = root.ok_or_else(|| AdminError::Invalid("give --root or --config".into()))?;
        return admin::user_quota_scan(users, name, &root);
    };
    let env = config::env_vars().map_err(|e| AdminError::Invalid(e.to_string()))?;
    let overrides = Overrides {
        root,
        ..Overrides::default()
    };
    let loaded =
        config::load(Some(config_file), &env, &overrides).map_err(|e| AdminError::Invalid(e.to_string()))?;
    let config = loaded.config;
    if config.storage.kind == StorageKind::Fs {
        return admin::user_quota_scan(users, name, &config.root);
    }
    let home = admin::user_home(users, name, &config.root)?;
    let timeout = Duration::from_secs(config.limits.data_timeout_secs);
    let backend = Backend::new(&config.storage, timeout).map_err(AdminError::Quota)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| AdminError::Quota(format!("cannot start the runtime: {e}")))?;
    let usage = runtime
        .block_on(object_usage(&backend, &config.root, &home))
        .map_err(AdminError::Quota)?;
    admin::record_usage(users, name, usage)?;
    Ok(usage)
}

/// The bytes and objects under `home`'s key prefix.
async fn object_usage(backend: &Backend, root: &Path, home: &Path) -> Result<Usage, String> {
    backend.check().await?;
    let Backend::Object(store) = backend else {
        return Err("not object storage".into());
    };
    let store = store
        .for_home(root, home)
        .map_err(|e| format!("the home {}: {e}", home.display()))?;
    let mut usage = Usage::default();
    let mut walked: u64 = 0;
    let mut pending = vec![String::from("/")];
    while let Some(dir) = pending.pop() {
        let entries = store
            .entries(&dir)
            .await
            .map_err(|e| format!("cannot list {dir} under {}: {e:?}", home.display()))?;
        if entries.len() >= LISTING_CAP {
            return Err(format!(
                "{dir} under {} holds {LISTING_CAP} entries or more: the listing may be cut short, \
                 so no usage is written",
                home.display()
            ));
        }
        for entry in entries {
            walked += 1;
            if walked > MAX_OBJECTS {
                return Err(format!(
                    "more than {MAX_OBJECTS} entries under {}: no usage is written",
                    home.display()
                ));
            }
            let path = if dir == "/" {
                format!("/{}", entry.name)
            } else {
                format!("{dir}/{}", entry.name)
            };
            match entry.kind {
                Kind::Dir => pending.push(path),
                Kind::File => {
                    usage.bytes += entry.size;
                    usage.files += 1;
                }
                // Object storage has no links.
                Kind::Symlink => {}
            }
        }
    }
    Ok(usage)
}
