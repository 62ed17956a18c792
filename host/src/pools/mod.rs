//! The pool registry: every btrfs filesystem nos looks after, keyed by its filesystem UUID
//! (never a device name, which changes between boots), and what becomes of each one at every
//! facts refresh.
//!
//! * [`registry`]: the stored table (`pools.json` in the state directory): label, mount point,
//!   members by devid with path and by-id link, profiles, encryption, the last known good
//!   state, the last scrub and the device-error readings deltas are judged against.
//! * [`reconcile`]: pure: the registry, one [`crate::gather::Observation`], the thresholds and
//!   `now` → a [`reconcile::Report`] (per pool: mounted, not mounted with its mount input,
//!   mounted elsewhere, or members missing; its health by [`crate::health::classify`]; the
//!   importable filesystems) and the next registry.
//! * [`service`]: [`service::PoolService`]: it reconciles every observation the pipeline's
//!   observer hands it and saves the registry when it changed.
//! * [`scrub_schedule`]: the scrub schedule's runner (`[scrub] auto`): due scrubs (pure) and
//!   their jobs, planned and applied unattended through the pipeline.
//!
//! **When a filesystem is registered:** when it is seen mounted at a path the agent reads pool
//! health at, that is a path its allowlist's read-only pool rules accept (below a mount root,
//! as every pool nos creates is). A pool mounted by nos is thus registered at the first refresh
//! after the mount; a btrfs mounted anywhere else is not nos's, and one on disks that is not
//! mounted at all is importable. Registration is never undone here: a registered pool that
//! disappears is shown as not mounted or with its members missing. Export and destroy remove a
//! pool from the table (left for the lifecycle work; managed fstab entries are not in the
//! facts yet).
//!
//! Neither [`registry`] nor [`reconcile`] does IO or reads the clock; only [`service`] writes,
//! through [`crate::store`]; [`scrub_schedule`] reaches the machine only through the pipeline.

pub mod reconcile;
pub mod registry;
pub mod scrub_schedule;
pub mod service;

pub use reconcile::{PoolState, PoolStatus, Report, reconcile};
pub use registry::Registry;
pub use service::PoolService;
