//! Server-side sessions: tokens and rotation rules (`token`, pure) and the table (`store`).

pub mod device;
pub mod store;
pub mod token;
