//! Server-side sessions: tokens and rotation rules (`token`, pure) and the table (`store`).

pub mod store;
pub mod token;
