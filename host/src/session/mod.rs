//! Server-side sessions: tokens and rotation rules (`token`, pure), the table (`store`) and the
//! live table of nosd with its persistence (`service`).

pub mod device;
pub mod service;
pub mod store;
pub mod token;
