//! The allowlist: the declarative grammar of the only commands nos may run as root.
