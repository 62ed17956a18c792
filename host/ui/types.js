// @ts-check
// The shapes of the /api/v1 bodies the pages read, as nosd's Rust side produces them (the
// `json!` bodies in host/src/http/routes/*.rs and the serde types they serialize). Types only:
// `tsc` reads this file (tests/ui: npm run typecheck); the browser never loads it, so nosd does
// not serve it. A page names a shape with `import('../types.js').Name` in a JSDoc comment.

// --- Errors -------------------------------------------------------------------------------

/**
 * Every refusal (`http/error.rs`, its one `IntoResponse`).
 * @typedef {object} ErrorBody
 * @property {{ code: string, message: string }} error
 */

// --- Account: routes/auth.rs, routes/setup.rs ---------------------------------------------

/**
 * A security notice (`auth::Notice`), shown until cleared.
 * @typedef {object} Notice
 * @property {number} at Unix seconds.
 * @property {string} kind An audit kind, snake_case.
 * @property {string} detail
 */

/**
 * `GET /api/v1/me`.
 * @typedef {object} Me
 * @property {string} username
 * @property {string} session_id
 * @property {boolean} totp_enrolled
 * @property {number} recovery_codes_left
 * @property {number} expires_at Unix seconds: the session's absolute end.
 * @property {number} reauth_valid_until Unix seconds.
 * @property {Notice[]} notices
 * @property {boolean} fixture_facts The disks shown are a fixture file, not this machine's (dry run).
 */

/**
 * `POST /api/v1/auth/login`.
 * @typedef {object} LoginReply
 * @property {string} username
 * @property {string} csrf_token
 * @property {number} recovery_codes_left
 */

/**
 * One session family of the signed-in user (`GET /api/v1/auth/sessions`).
 * @typedef {object} SessionInfo
 * @property {string} id
 * @property {number} created_at Unix seconds.
 * @property {number} last_seen_at Unix seconds.
 * @property {string} client_ip
 * @property {string} device The browser, from its user agent; may be empty.
 * @property {boolean} current Whether it is the session asking.
 */

/**
 * `GET /api/v1/auth/sessions`.
 * @typedef {object} SessionsReply
 * @property {SessionInfo[]} sessions
 */

/**
 * A TOTP enrolment: `POST /api/v1/setup/totp` and `POST /api/v1/auth/totp/enrol`.
 * @typedef {object} Enrolment
 * @property {string} secret Base32.
 * @property {string} otpauth_uri
 * @property {string} qr_svg SVG text; read for its path data, never parsed as markup.
 */

/**
 * `POST /api/v1/auth/recovery-codes`.
 * @typedef {object} RecoveryCodesReply
 * @property {string[]} recovery_codes
 */

/**
 * `POST /api/v1/setup/admin` (201).
 * @typedef {object} SetupAdminReply
 * @property {string} username
 * @property {string[]} recovery_codes
 */

// --- Facts: facts/mod.rs (`GET /api/v1/facts`) --------------------------------------------

/**
 * The one state the host derived for a device (`facts::DeviceState`, kebab-case).
 * @typedef {'blank' | 'holds-data' | 'in-use'} DeviceState
 */

/**
 * @typedef {object} BlockDevice
 * @property {string} path
 * @property {string} kname
 * @property {number} size_bytes
 * @property {boolean} rotational
 * @property {string} device_type `disk`, `part`, `loop`, …
 * @property {string | null} fstype
 * @property {string | null} label
 * @property {string | null} uuid
 * @property {string[]} mountpoints
 * @property {string[]} holders
 * @property {string[]} by_id
 * @property {string | null} parent Kernel name of the device this one sits on.
 * @property {string | null} model
 * @property {string | null} serial
 * @property {string | null} wwn
 * @property {string | null} partition_table
 * @property {string | null} usage
 * @property {DeviceState} state
 * @property {string[]} reasons Why it is not blank; empty when blank.
 */

/**
 * @typedef {object} BtrfsDevice
 * @property {number} devid 0 when unknown.
 * @property {string} path
 * @property {number} size_bytes
 */

/**
 * @typedef {object} BtrfsFilesystem
 * @property {string} uuid
 * @property {string | null} label
 * @property {string} mountpoint
 * @property {BtrfsDevice[]} devices
 * @property {string} data_profile
 * @property {string} metadata_profile
 * @property {number} size_bytes
 * @property {number} used_bytes
 */

/**
 * @typedef {object} Facts
 * @property {BlockDevice[]} block_devices
 * @property {BtrfsFilesystem[]} filesystems
 * @property {string[]} fresh_uuids
 * @property {number} now_unix_seconds
 */

/**
 * `GET /api/v1/facts`.
 * @typedef {object} FactsReply
 * @property {Facts} facts
 */

// --- Plugins: routes/pipeline.rs `plugin_json` --------------------------------------------

/**
 * The part of JSON Schema a planner's `describe()` uses and the wizard reads; `x-nos-kind` is
 * nos's own: `device` or `devices`, block devices picked from the facts.
 * @typedef {{
 *   type?: string, title?: string, description?: string, format?: string, pattern?: string,
 *   minimum?: number, maximum?: number, default?: unknown, enum?: unknown[],
 *   items?: JsonSchema, properties?: Record<string, JsonSchema>, required?: string[],
 *   'x-nos-kind'?: string,
 * }} JsonSchema
 */

/**
 * One loaded plugin (`GET /api/v1/plugins`). `kind` is the manifest kind's Rust name in
 * lowercase. `summary` and `input_schema` come from `describe()`; when that fails,
 * `describe_error` says why instead.
 * @typedef {object} PluginInfo
 * @property {string} name
 * @property {string} version
 * @property {'planner' | 'auth-policy'} kind
 * @property {string} api_version
 * @property {string} sha256
 * @property {string[]} scope Allowlist rule ids.
 * @property {boolean} granted
 * @property {boolean} enabled
 * @property {string} [summary]
 * @property {JsonSchema} [input_schema] Absent when the schema is not JSON; its properties are in the planner's order.
 * @property {string} [describe_error]
 */

/**
 * `GET /api/v1/plugins`.
 * @typedef {object} PluginsReply
 * @property {PluginInfo[]} plugins
 * @property {FailedPluginInfo[]} [failed] Configured plugins that did not load.
 */

/**
 * `POST /api/v1/plugins/{name}/{grant,revoke,enable}`.
 * @typedef {object} PluginChangeReply
 * @property {string} name
 * @property {string} sha256
 * @property {boolean} granted
 * @property {boolean} enabled
 */

// --- Plans: pipeline/mod.rs `step_json`, routes/pipeline.rs `plan_json` -------------------

/**
 * What a step asks for: an argv, or a managed-file request in words.
 * @typedef {{ argv: string[] } | { managed: string }} PlanRequest
 */

/**
 * The allowlist's verdict on a request.
 * @typedef {{ allowed: true, rule_id: string, canonical: string }
 *   | { allowed: false, reason: string }} StepVerdict
 */

/**
 * @typedef {'read' | 'state' | 'destructive'} Effect
 */

/**
 * @typedef {object} PlanStep
 * @property {string} id
 * @property {string} title
 * @property {Effect} effect
 * @property {PlanRequest} request
 * @property {PlanRequest | null} rollback
 * @property {string | null} confirmation
 * @property {StepVerdict} verdict
 * @property {StepVerdict | null} rollback_verdict
 */

/**
 * A stored plan.
 * @typedef {object} Plan
 * @property {string} id
 * @property {string} sha256
 * @property {string} plugin
 * @property {string} pool
 * @property {number} created_at Unix seconds.
 * @property {number} expires_at Unix seconds.
 * @property {string} confirmation The words to type to apply it.
 * @property {boolean} applicable Every step is allowed.
 * @property {number} n_rejected
 * @property {string[]} warnings
 * @property {PlanStep[]} steps
 */

/**
 * `POST /api/v1/plans` and `GET /api/v1/plans/{id}`.
 * @typedef {object} PlanReply
 * @property {Plan} plan
 */

/**
 * `POST /api/v1/plans/{id}/apply` (202): the job's id.
 * @typedef {object} ApplyReply
 * @property {string} job
 */

// --- Jobs: pipeline/jobs.rs ---------------------------------------------------------------

/**
 * @typedef {'running' | 'succeeded' | 'rolled_back' | 'failed' | 'interrupted'} JobState
 */

/**
 * @typedef {'pending' | 'running' | 'done' | 'failed' | 'skipped' | 'rolled_back'
 *   | 'rollback_failed' | 'not_undone'} StepState
 */

/**
 * @typedef {object} StepRecord
 * @property {string} id
 * @property {string} title
 * @property {StepState} state
 * @property {string | null} rule_id
 * @property {string | null} ran
 * @property {number | null} exit_code
 * @property {string} output
 * @property {string | null} rollback_ran
 * @property {string | null} rollback_output
 */

/**
 * One event of a job; also the `data` of each event of `GET /api/v1/jobs/{id}/events`.
 * @typedef {object} JobEvent
 * @property {number} seq
 * @property {number} at Unix seconds.
 * @property {string} kind `step_started`, `progress`, `step_finished`, `step_failed`,
 *   `rollback_started`, `rollback_finished`, `rollback_failed`, `job_finished`, `job_interrupted`.
 * @property {string | null} step
 * @property {string} message
 */

/**
 * A job as `GET /api/v1/jobs` lists it (newest first, without steps and events).
 * @typedef {object} JobSummary
 * @property {string} id
 * @property {string} plugin
 * @property {string} pool
 * @property {string} username
 * @property {JobState} state
 * @property {number} created_at Unix seconds.
 * @property {number | null} finished_at Unix seconds.
 */

/**
 * `GET /api/v1/jobs`.
 * @typedef {object} JobsReply
 * @property {JobSummary[]} jobs
 */

/**
 * A job's whole record (`GET /api/v1/jobs/{id}`).
 * @typedef {object} JobRecord
 * @property {string} id
 * @property {string} plan_id
 * @property {string} plan_sha256
 * @property {string} plugin
 * @property {string} pool
 * @property {string} username
 * @property {number} created_at
 * @property {number | null} finished_at
 * @property {JobState} state
 * @property {StepRecord[]} steps
 * @property {JobEvent[]} events
 */

/**
 * `GET /api/v1/jobs/{id}`.
 * @typedef {object} JobReply
 * @property {JobRecord} job
 */

// --- Audit: audit/chain.rs `Record`, routes/pipeline.rs `get_audit` -----------------------

/**
 * @typedef {object} AuditRecord
 * @property {number} seq
 * @property {string} prev
 * @property {number} at Unix seconds.
 * @property {string} kind
 * @property {string | null} username
 * @property {string | null} client
 * @property {string | null} verdict
 * @property {string} detail
 * @property {string} hash
 */

/**
 * Whether the hash chain verifies.
 * @typedef {{ verified: true, records: number, files: number, last_hash: string }
 *   | { verified: false, error: string }} AuditChain
 */

/**
 * `GET /api/v1/audit`: the newest records, oldest first.
 * @typedef {object} AuditReply
 * @property {AuditRecord[]} records
 * @property {AuditChain} chain
 */

// --- Allowlist: routes/allowlist.rs -------------------------------------------------------

/**
 * @typedef {object} AllowlistRule
 * @property {string} id
 * @property {'command' | 'managed'} kind
 * @property {string} effect
 * @property {string} description
 * @property {string} explain The engine's `explain` text.
 */

/**
 * @typedef {object} AllowlistFinding
 * @property {'critical' | 'high' | 'medium' | 'low' | 'info'} severity
 * @property {string} code
 * @property {string} subject A rule id, usually.
 * @property {string} message
 */

/**
 * `GET /api/v1/allowlist`.
 * @typedef {object} AllowlistReply
 * @property {string} path
 * @property {AllowlistRule[]} rules
 * @property {AllowlistFinding[]} findings
 */

/**
 * `POST /api/v1/allowlist/check`.
 * @typedef {{ allowed: true, rule: string, effect: string, argv: string[] }
 *   | { allowed: false, token: number | null, rule: string | null, reason: string }} CheckReply
 */

export {};

// --- Pools: routes/pools.rs (http::api::PoolsView, PoolView) ------------------------------

/**
 * A pool's health, the worst state any finding argues for (`health::HealthState`).
 * @typedef {'ok' | 'scrub-overdue' | 'nearly-full' | 'errors' | 'degraded'} PoolHealth
 */

/**
 * What a registered pool is doing (`pools::PoolState`).
 * @typedef {'mounted' | 'not-mounted' | 'mounted-elsewhere' | 'members-missing'} PoolState
 */

/**
 * `btrfs device stats`' counters of one member.
 * @typedef {object} ErrorCounters
 * @property {number} write_io_errs
 * @property {number} read_io_errs
 * @property {number} flush_io_errs
 * @property {number} corruption_errs
 * @property {number} generation_errs
 */

/**
 * @typedef {object} PoolMember
 * @property {number} devid
 * @property {string} path
 * @property {string | null} by_id
 * @property {boolean} missing
 * @property {ErrorCounters | null} counters `null` when not read (the pool is not mounted).
 */

/**
 * @typedef {object} PoolScrub
 * @property {string} state `running`, `aborted`, `finished` or `interrupted`.
 * @property {number} since Unix seconds of the start (or the last resume).
 * @property {boolean} resumed
 * @property {number} duration_seconds
 * @property {number} bytes_scrubbed
 * @property {number} corrected_errors
 * @property {number} uncorrectable_errors
 */

/**
 * `GET /api/v1/disks/{name}/smart`: the drive's SMART reading, made when asked.
 * @typedef {object} SmartReading
 * @property {string} disk
 * @property {'ok' | 'warning' | 'failing' | 'not-available'} state
 * @property {string[]} reasons
 * @property {string | null} model
 * @property {string | null} serial
 * @property {string | null} protocol
 * @property {number | null} temperature_celsius
 * @property {number | null} power_on_hours
 * @property {number} exit_status
 */

/**
 * `GET /api/v1/pools/{uuid}`, and each entry of `GET /api/v1/pools`.
 * @typedef {object} Pool
 * @property {string} uuid
 * @property {string | null} label
 * @property {string} mountpoint Where nos mounts it.
 * @property {boolean} mounted Whether it is mounted now, anywhere (degraded too).
 * @property {string | null} mounted_at Where it is mounted instead (`mounted-elsewhere`; `null`
 *   when outside nos's view).
 * @property {{ uuid: string, mountpoint: string } | null} mount_input A mount plan's input (`not-mounted`).
 * @property {PoolState} state
 * @property {PoolHealth} health
 * @property {string[]} reasons Every finding behind `health`, worst first.
 * @property {PoolMember[]} members
 * @property {PoolScrub | null} last_scrub
 * @property {PoolScrub[]} scrub_history Every scrub nos has seen, newest first.
 * @property {{ at: number, n_members: number, size_bytes: number } | null} last_good
 * @property {string} data_profile
 * @property {string} metadata_profile
 * @property {boolean} encrypted
 */

/**
 * A btrfs filesystem on the disks, not registered and not mounted.
 * @typedef {object} ImportablePool
 * @property {string} uuid
 * @property {string | null} label
 * @property {string[]} devices
 * @property {number | null} total_devices
 * @property {number} n_missing
 */

/**
 * `GET /api/v1/pools`.
 * @typedef {object} PoolsReply
 * @property {Pool[]} pools
 * @property {ImportablePool[]} importable
 * @property {number} observed_at Unix seconds.

/**
 * A configured plugin that did not load (`GET /api/v1/plugins` `failed`): nosd serves without it.
 * @typedef {object} FailedPluginInfo
 * @property {string} path Where it was configured.
 * @property {string} reason Why it did not load.
 */

/**
 * One alert (`GET /api/v1/alerts`).
 * @typedef {object} AlertInfo
 * @property {number} id
 * @property {string} kind `pool-degraded`, `device-missing`, `device-errors-grew`, `scrub-found-errors`, `scrub-overdue`, `pool-nearly-full`, `pool-full`, `job-failed` or `job-stalled`.
 * @property {'notice' | 'warning' | 'critical'} severity
 * @property {'raised' | 'acknowledged' | 'cleared'} state
 * @property {string} message
 * @property {number} first_seen Unix seconds.
 * @property {number} last_seen Unix seconds.
 * @property {number | null} acknowledged_at
 * @property {string | null} acknowledged_by
 * @property {number | null} cleared_at
 * @property {{ type: string, pool_uuid?: string, pool_label?: string | null, devid?: number, path?: string, job_id?: string, pool?: string }} subject
 */

/**
 * `GET /api/v1/alerts`.
 * @typedef {object} AlertsReply
 * @property {AlertInfo[]} alerts Open first, then cleared.
 * @property {number} n_open
 * @property {number} n_unacknowledged
 */
