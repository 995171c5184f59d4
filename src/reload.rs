//! Hot reload of the policy set: on a change to the policy files, or on
//! SIGHUP, the whole set is read and compiled again and, only if it has no
//! errors, swapped in atomically.
//!
//! - **All or nothing.** A set with any error is never served: the gateway
//!   keeps the last good set, every diagnostic is logged, and the failure is
//!   kept in [`ReloadStatus`] until a later reload succeeds.
//! - **Requests in flight** finish under the set they started with: the
//!   gateway pins one `Arc<PolicySet>` per request, and a swap replaces the
//!   pointer, never a set being read.
//! - **Editors.** The policy folder (for a single policy file, its folder) is
//!   watched rather than the files: an editor that saves by writing a
//!   temporary file and renaming it over the old one replaces the watched
//!   inode, which a watch on the file itself would silently lose. Saves by
//!   truncate-then-write are seen as modifications of the same file.
//! - **Bursts.** A reload starts only after the folder has been quiet for the
//!   debounce period (250 ms by default), so a burst of saves is one reload.
//!   A change that leaves every policy file's text as it was (an editor's
//!   swap file, a `touch`) reloads nothing; SIGHUP always reloads.
//! - **Half-written files.** An editor that truncates and then writes leaves
//!   a moment where the file is empty or cut short, and a cut-short rule can
//!   be valid and wider than the full one (its `when:` not written yet). So
//!   a set is applied, or its errors reported, only if no file event arrived
//!   while it was read and compiled; otherwise it is dropped and the reload
//!   waits for the folder to be quiet again. This is why the debounce is
//!   done here, on `notify`'s raw events, rather than by a debouncer crate:
//!   it needs to know whether events are pending, which they do not expose.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::diagnostic::Diagnostic;
use crate::gateway::Gateway;
use crate::policy::{self, PolicySet, PolicySource};

/// The state of policy reloading, for a status endpoint and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadStatus {
    /// A short hash of the policy files' names and text in the set being
    /// served.
    pub version: String,
    /// When the set being served was loaded (the start, before any reload).
    pub last_success: SystemTime,
    /// Every error of the last failed reload, one diagnostic per line;
    /// `None` once a later reload succeeds.
    pub last_error: Option<String>,
    /// Reloads that replaced the set.
    pub successes: u64,
    /// Reloads refused because the new set had errors.
    pub failures: u64,
}

/// How the reloader behaves.
#[derive(Debug, Clone, Copy)]
pub struct ReloadOptions {
    /// Quiet time after the last file event before reloading.
    pub debounce: Duration,
    /// Whether SIGHUP triggers a reload. Signal handlers are process-wide,
    /// so only the gateway's own `serve` turns this on.
    pub sighup: bool,
}

impl Default for ReloadOptions {
    fn default() -> Self {
        Self {
            debounce: Duration::from_millis(250),
            sighup: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// Files changed: reload if their text did.
    Files,
    /// SIGHUP or [`ReloadHandle::reload_now`]: reload whatever the text.
    Forced,
}

/// A cheap, cloneable view of the reloader.
#[derive(Debug, Clone)]
pub struct ReloadHandle {
    status: watch::Receiver<ReloadStatus>,
    trigger: mpsc::UnboundedSender<Trigger>,
}

impl ReloadHandle {
    /// The current status.
    pub fn status(&self) -> ReloadStatus {
        self.status.borrow().clone()
    }

    /// A receiver that sees every status change.
    pub fn subscribe(&self) -> watch::Receiver<ReloadStatus> {
        self.status.clone()
    }

    /// Asks for a reload now, as SIGHUP does.
    pub fn reload_now(&self) {
        let _ = self.trigger.send(Trigger::Forced);
    }
}

/// Watches a gateway's policy files and reloads them. Dropping it stops
/// watching.
pub struct PolicyReloader {
    handle: ReloadHandle,
    _watcher: Option<RecommendedWatcher>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for PolicyReloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyReloader")
            .field("status", &self.handle.status())
            .finish_non_exhaustive()
    }
}

impl Drop for PolicyReloader {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl PolicyReloader {
    /// Starts watching `policies` (the path `gateway`'s set was loaded
    /// from). Must be called inside a Tokio runtime.
    ///
    /// If the files cannot be watched, that is logged and reloads still
    /// happen on SIGHUP and [`ReloadHandle::reload_now`].
    pub fn start(gateway: Gateway, policies: &Path, options: ReloadOptions) -> Self {
        let (trigger, mut triggers) = mpsc::unbounded_channel();
        let initial = policy::sources_version(&PolicySource::read(policies).files);
        let (status_tx, status) = watch::channel(ReloadStatus {
            version: initial.clone(),
            last_success: SystemTime::now(),
            last_error: None,
            successes: 0,
            failures: 0,
        });
        let mut tasks = Vec::new();
        if options.sighup {
            if let Some(task) = forward_sighup(trigger.clone()) {
                tasks.push(task);
            }
        }
        // Counts file events, so a reload can tell whether files changed
        // while it was reading them.
        let events = Arc::new(AtomicU64::new(0));
        let watcher = watch_folder(policies, events.clone(), trigger.clone());

        let path = policies.to_path_buf();
        let debounce = options.debounce;
        tasks.push(tokio::spawn(async move {
            let mut last_attempt = initial;
            // A forced reload dropped because files changed under it still counts.
            let mut carried = false;
            while let Some(first) = triggers.recv().await {
                let mut forced = std::mem::take(&mut carried) || first == Trigger::Forced;
                // Quiet period: every further event starts it again.
                loop {
                    match tokio::time::timeout(debounce, triggers.recv()).await {
                        Ok(Some(more)) => forced |= more == Trigger::Forced,
                        Ok(None) => return,
                        Err(_quiet) => break,
                    }
                }
                let seen = events.load(Ordering::SeqCst);
                let path = path.clone();
                let previous = (!forced).then(|| last_attempt.clone());
                let attempt =
                    tokio::task::spawn_blocking(move || attempt(&path, previous, debounce)).await;
                if events.load(Ordering::SeqCst) != seen
                    || matches!(attempt, Ok(Attempt::Unsettled))
                {
                    carried = forced;
                    tracing::debug!(
                        "policy files changed while being read: waiting for them to settle"
                    );
                    continue;
                }
                match attempt {
                    Ok(Attempt::Unchanged) => {
                        tracing::debug!(
                            "policy files changed on disk but not in content: nothing to reload"
                        );
                    }
                    Ok(Attempt::Loaded(version, set)) => {
                        last_attempt = version.clone();
                        applied(&gateway, &status_tx, version, *set);
                    }
                    Ok(Attempt::Failed(version, diagnostics)) => {
                        last_attempt = version;
                        gateway.metrics().policy_reload_failed();
                        refused(&status_tx, &diagnostics);
                    }
                    Ok(Attempt::Unsettled) => unreachable!("handled above"),
                    Err(error) => tracing::error!(%error, "policy reload panicked"),
                }
            }
        }));
        Self {
            handle: ReloadHandle { status, trigger },
            _watcher: watcher,
            tasks,
        }
    }

    /// A handle to read the status and trigger reloads.
    pub fn handle(&self) -> ReloadHandle {
        self.handle.clone()
    }
}

enum Attempt {
    Unchanged,
    Unsettled,
    Loaded(String, Box<PolicySet>),
    Failed(String, Vec<Diagnostic>),
}

/// Reads and compiles the whole set; `previous` is the version of the last
/// attempt, to skip text that did not change.
fn attempt(path: &Path, previous: Option<String>, settle: Duration) -> Attempt {
    let source = PolicySource::read(path);
    let version = policy::sources_version(&source.files);
    if previous.as_ref() == Some(&version) {
        return Attempt::Unchanged;
    }
    // A writer that pauses longer than the debounce (a copy over a slow
    // link, a script writing in pieces) leaves the files quiet but not
    // done: read them again a moment later and go on only if nothing moved.
    std::thread::sleep(settle);
    if policy::sources_version(&PolicySource::read(path).files) != version {
        return Attempt::Unsettled;
    }
    match PolicySet::load_source(&source).and_then(PolicySet::into_servable) {
        Ok(set) => Attempt::Loaded(version, Box::new(set)),
        Err(diagnostics) => Attempt::Failed(version, diagnostics),
    }
}

fn applied(
    gateway: &Gateway,
    status: &watch::Sender<ReloadStatus>,
    version: String,
    set: PolicySet,
) {
    for warning in set.warnings() {
        tracing::warn!(diagnostic = %warning, "policy warning");
    }
    tracing::info!(
        version = %version,
        rules = set.rules().len(),
        warnings = set.warnings().len(),
        "policies reloaded"
    );
    gateway.replace_policies(set);
    status.send_modify(|s| {
        s.version = version;
        s.last_success = SystemTime::now();
        s.last_error = None;
        s.successes += 1;
    });
}

fn refused(status: &watch::Sender<ReloadStatus>, diagnostics: &[Diagnostic]) {
    let errors: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    for error in &errors {
        tracing::error!(diagnostic = %error, "policy problem");
    }
    status.send_modify(|s| {
        tracing::error!(
            problems = errors.len(),
            serving = %s.version,
            "policy reload refused: the new policies have errors or unsilenced warnings (see `wix-elevator check`); still serving the last good set"
        );
        s.last_error = Some(errors.join("\n"));
        s.failures += 1;
    });
}

/// Watches the folder holding the policies, not the files: see the module
/// docs. Each change is counted in `events` and sent as a trigger.
fn watch_folder(
    policies: &Path,
    events: Arc<AtomicU64>,
    trigger: mpsc::UnboundedSender<Trigger>,
) -> Option<RecommendedWatcher> {
    let folder: PathBuf = if policies.is_dir() {
        policies.to_path_buf()
    } else {
        match policies.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        }
    };
    let on_event = move |result: notify::Result<notify::Event>| match result {
        // Opening and closing are not changes; the reloader's own reads
        // produce them.
        Ok(event) if matches!(event.kind, EventKind::Access(_)) => {}
        Ok(_) => {
            events.fetch_add(1, Ordering::SeqCst);
            let _ = trigger.send(Trigger::Files);
        }
        Err(error) => tracing::warn!(%error, "policy file watching reported an error"),
    };
    let started = notify::recommended_watcher(on_event).and_then(|mut watcher| {
        watcher
            .watch(&folder, RecursiveMode::NonRecursive)
            .map(|()| watcher)
    });
    match started {
        Ok(watcher) => {
            tracing::info!(folder = %folder.display(), "watching policy files for changes");
            Some(watcher)
        }
        Err(error) => {
            tracing::error!(%error, folder = %folder.display(), "cannot watch policy files; reload them with SIGHUP");
            None
        }
    }
}

/// Registers for SIGHUP now (so that a signal arriving before the task runs
/// is not fatal) and forwards each one as a forced reload.
#[cfg(unix)]
fn forward_sighup(trigger: mpsc::UnboundedSender<Trigger>) -> Option<JoinHandle<()>> {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::hangup()) {
        Ok(mut hangups) => Some(tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading policies");
                if trigger.send(Trigger::Forced).is_err() {
                    break;
                }
            }
        })),
        Err(error) => {
            tracing::error!(%error, "cannot listen for SIGHUP");
            None
        }
    }
}

#[cfg(not(unix))]
fn forward_sighup(_trigger: mpsc::UnboundedSender<Trigger>) -> Option<JoinHandle<()>> {
    None
}
