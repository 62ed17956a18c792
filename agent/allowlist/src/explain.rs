//! The language of a rule as an auditor reads it: grammar, types, rendering, exec-time checks,
//! and generated accepted and rejected examples (each rejection the matcher's own words).
//!
//! Pure: builds text from the loaded allowlist; never touches the filesystem.

use std::fmt::Write as _;

use super::grammar::{
    Arity, DeviceForm, Effect, FlagValue, InUsePolicy, Item, Kind, OptionPattern, Rule,
    SubvolumeForm, TypeDef, TypeId,
};
use super::value::{counter_samples, samples};
use super::{Allowlist, Verdict};

/// How many generated examples of each sort `explain` shows at most.
const MAX_EXAMPLES: usize = 6;

/// The full text of `nosctl allowlist explain RULE`.
pub fn explain(allowlist: &Allowlist, rule: &Rule) -> String {
    let binary = allowlist.binary_of(rule);
    let mut out = String::new();
    let _ = writeln!(out, "rule {} ({})", rule.id, rule.effect.as_str());
    if !rule.description.is_empty() {
        let _ = writeln!(out, "  {}", rule.description);
    }
    let _ = writeln!(out, "  defined at {}", rule.origin);
    let pin = match binary.sha256 {
        Some(digest) => format!("sha256 {}", hex::encode(digest)),
        None => "sha256 not pinned".to_owned(),
    };
    let _ = writeln!(out, "  binary {} = {} ({pin})", binary.name, binary.path);
    let limits = &rule.limits;
    let _ = write!(
        out,
        "  limits: timeout {} s, then SIGKILL after {} s; stdout kept up to {} bytes, stderr up to {} bytes",
        limits.timeout.as_secs(),
        limits.kill_after.as_secs(),
        limits.max_stdout,
        limits.max_stderr
    );
    for (code, state) in &limits.exit_states {
        let _ = write!(out, "; exit {code} means `{state}`");
    }
    let _ = writeln!(out);
    if rule.beside_jobs {
        let _ = writeln!(out, "  may run while a job holds its pool");
    }
    if rule.job {
        let _ = writeln!(out, "  runs as a job whose status is polled");
    }

    let _ = writeln!(out, "\ngrammar:");
    let _ = writeln!(
        out,
        "  request := (\"{}\" | \"{}\"){}",
        binary.name,
        binary.path,
        template_grammar(rule)
    );
    for flag in &rule.flags {
        let value = match flag.value {
            FlagValue::None => String::new(),
            FlagValue::Separate(ty) => format!(" {}", allowlist.type_of(ty).name),
            FlagValue::Joined(ty) => allowlist.type_of(ty).name.clone(),
        };
        let _ = write!(out, "  flag {}{value}: at most {}", flag.token, flag.max);
        for &other in &flag.conflicts {
            let _ = write!(out, "; not with {}", rule.flags[other].token);
        }
        for &other in &flag.requires {
            let _ = write!(out, "; requires {}", rule.flags[other].token);
        }
        let _ = writeln!(out);
    }
    if rule.min_flags > 0 {
        let _ = writeln!(out, "  at least {} flag(s) must be given", rule.min_flags);
    }
    for param in &rule.params {
        let count = match param.arity {
            Arity::One => "one value".to_owned(),
            Arity::Many { min, max, distinct } => format!(
                "{min} to {max} values{}",
                if distinct { ", all distinct" } else { "" }
            ),
        };
        let _ = writeln!(
            out,
            "  {} := {} ({count})",
            param.name.to_uppercase(),
            allowlist.type_of(param.ty).name
        );
    }
    if !rule.distinct.is_empty() {
        let names: Vec<String> = rule
            .distinct
            .iter()
            .map(|&idx| rule.params[idx].name.to_uppercase())
            .collect();
        let _ = writeln!(out, "  {} must all differ", names.join(", "));
    }

    let _ = writeln!(out, "\ntypes:");
    let mut shown: Vec<TypeId> = Vec::new();
    for ty in rule
        .params
        .iter()
        .map(|param| param.ty)
        .chain(rule.flags.iter().filter_map(|flag| flag.value.ty()))
    {
        if !shown.contains(&ty) {
            shown.push(ty);
            let _ = writeln!(
                out,
                "  {} := {}",
                allowlist.type_of(ty).name,
                describe_type(allowlist, allowlist.type_of(ty))
            );
        }
    }
    let _ = writeln!(
        out,
        "  (every value: printable ASCII, no whitespace, never starting with `-`)"
    );

    let _ = writeln!(
        out,
        "\nrenders:\n  {}{}",
        binary.path,
        render_template(rule, binary.end_of_options)
    );
    let _ = writeln!(out, "\nexec-time checks by the agent:");
    let _ = writeln!(out, "  {}", exec_checks(allowlist, rule));

    let Examples { accepted, rejected } = examples(allowlist, rule);
    let _ = writeln!(out, "\naccepted, for example:");
    for argv in &accepted {
        let _ = writeln!(out, "  {}", argv.join(" "));
    }
    let _ = writeln!(out, "\nrejected, for example:");
    for (argv, reason) in &rejected {
        let _ = writeln!(
            out,
            "  {}\n      -> {reason}",
            super::value::escape(&argv.join(" "))
        );
    }
    out
}

fn template_grammar(rule: &Rule) -> String {
    let mut out = String::new();
    for item in &rule.template {
        out.push(' ');
        match item {
            Item::Literal(literal) => out.push_str(&format!("\"{literal}\"")),
            Item::Implied(implied) => out.push_str(&format!("[\"{implied}\"]")),
            Item::EndOfOptions => out.push_str("[\"--\"]"),
            Item::Flags => out.push_str("{ FLAG }"),
            Item::Param(idx) => {
                let param = &rule.params[*idx];
                out.push_str(&param.name.to_uppercase());
                if let Arity::Many { min, max, .. } = param.arity {
                    out.push_str(&format!("{{{min},{max}}}"));
                }
            }
        }
    }
    out
}

fn render_template(rule: &Rule, end_of_options: bool) -> String {
    let mut out = String::new();
    for item in &rule.template {
        match item {
            Item::Literal(literal) | Item::Implied(literal) => out.push_str(&format!(" {literal}")),
            Item::EndOfOptions if end_of_options => out.push_str(" --"),
            Item::EndOfOptions => {}
            Item::Flags => {
                let flags: Vec<&str> = rule.flags.iter().map(|flag| flag.token.as_str()).collect();
                out.push_str(&format!(
                    " [{}] (given flags, in this order)",
                    flags.join(" ")
                ));
            }
            Item::Param(idx) => {
                let param = &rule.params[*idx];
                out.push(' ');
                out.push_str(&param.name.to_uppercase());
                if matches!(param.arity, Arity::Many { .. }) {
                    out.push_str("...");
                }
            }
        }
    }
    out
}

fn exec_checks(allowlist: &Allowlist, rule: &Rule) -> String {
    let kinds: Vec<&Kind> = rule
        .params
        .iter()
        .map(|param| &allowlist.type_of(param.ty).kind)
        .collect();
    let mut checks: Vec<String> = Vec::new();
    if kinds.iter().any(|kind| matches!(kind, Kind::Device(_))) {
        checks.push("each device is a block device, by-* and mapper links resolved to the kernel name, all distinct".into());
    }
    if rule.effect != Effect::Read {
        let device_params = rule
            .params
            .iter()
            .filter(|param| matches!(allowlist.type_of(param.ty).kind, Kind::Device(_)));
        let mut refused = Vec::new();
        for param in device_params {
            match &param.in_use {
                InUsePolicy::Refused => refused.push(param.name.to_uppercase()),
                InUsePolicy::Allowed { reason } => checks.push(format!(
                    "{} may be in use (in_use = allowed): {reason}",
                    param.name.to_uppercase()
                )),
            }
        }
        let device_flags: Vec<&str> = rule
            .flags
            .iter()
            .filter(|flag| {
                flag.value
                    .ty()
                    .is_some_and(|ty| matches!(allowlist.type_of(ty).kind, Kind::Device(_)))
            })
            .map(|flag| flag.token.as_str())
            .collect();
        refused.extend(
            device_flags
                .iter()
                .map(|token| format!("the value of {token}")),
        );
        if !refused.is_empty() {
            checks.push(format!(
                "{} refused when in use, just before the spawn: the device or a partition mounted or otherwise claimed exclusively (O_EXCL), held by md/dm, backing a loop device, active swap, or holding the root filesystem",
                refused.join(", ")
            ));
        }
    }
    if kinds.iter().any(|kind| matches!(kind, Kind::MountPath(_))) {
        checks.push("each mount path is walked without following symlinks; every component root-owned, not group/other-writable".into());
    }
    if kinds.iter().any(|kind| matches!(kind, Kind::Subvolume(_))) {
        checks.push("each subvolume path's directories are walked without following symlinks, every one root-owned, not group/other-writable; the last component is no symlink and, if it exists, a btrfs subvolume root".into());
    }
    if kinds.iter().any(|kind| matches!(kind, Kind::KeyFile(_))) {
        checks.push("the key file is root-owned, mode 0400 or stricter".into());
    }
    if kinds
        .iter()
        .any(|kind| matches!(kind, Kind::MountOptions(_)))
    {
        checks.push("the mount always gets nosuid,nodev".into());
    }
    if allowlist.binary_of(rule).sha256.is_some() {
        checks.push("the binary's sha256 matches its pin".into());
    }
    if checks.is_empty() {
        "none beyond the static checks".to_owned()
    } else {
        checks.join("\n  ")
    }
}

/// A type's language in words.
pub fn describe_type(allowlist: &Allowlist, ty: &TypeDef) -> String {
    const COMPONENT: &str = "[A-Za-z0-9._@:+-]{1,255} (not `.`, `..` or hidden)";
    match &ty.kind {
        Kind::Device(spec) => {
            let forms: Vec<String> = spec
                .forms
                .iter()
                .map(|form| match form {
                    DeviceForm::Kernel => {
                        format!("/dev/({})[a-z0-9]+", spec.kernel_names.join("|"))
                    }
                    DeviceForm::Mapper => {
                        "/dev/mapper/[A-Za-z0-9_-]{1,127} (not control)".to_owned()
                    }
                    other => format!("{}/NAME", other.dir()),
                })
                .collect();
            format!("device: {}; NAME := {COMPONENT}", forms.join(" | "))
        }
        Kind::MountPath(spec) => {
            format!(
                "mount_path: ({})/C[/C]... with 1 to {} components C := {COMPONENT}; the root itself is refused",
                spec.roots.join("|"),
                spec.max_depth
            )
        }
        Kind::Subvolume(spec) => format!(
            "subvolume ({}): {} below ({}), the pool 1 to {} components, each C := {COMPONENT}{}",
            spec.form.as_str(),
            super::value::subvolume_shape(spec.form),
            spec.roots.join("|"),
            spec.pool_depth,
            if spec.form == SubvolumeForm::Snapshot {
                "; timestamp := YYYYMMDDTHHMMSSZ[-[a-z0-9]{1,32}]"
            } else {
                ""
            }
        ),
        Kind::KeyFile(spec) => format!(
            "key_file: {}/NAME{} with NAME a single component {COMPONENT}",
            spec.dir, spec.suffix
        ),
        Kind::Label(spec) => format!(
            "label: [A-Za-z0-9._-]{{1,{}}}, not starting with `.`",
            spec.max_len
        ),
        Kind::MapperName(spec) => format!("mapper_name: [A-Za-z0-9_-]{{1,{}}}", spec.max_len),
        Kind::Enum(values) => format!("enum: {}", values.join(" | ")),
        Kind::Int { min, max } => format!("int: decimal {min}..={max}, no sign, no leading zeros"),
        Kind::Devid { max } => format!("devid: decimal 1..={max}, no sign, no leading zeros"),
        Kind::Uuid => "uuid: lowercase hex 8-4-4-4-12".to_owned(),
        Kind::MountOptions(spec) => {
            let allow: Vec<String> = spec
                .allow
                .iter()
                .map(|pattern| match pattern {
                    OptionPattern::Exact(word) => word.clone(),
                    OptionPattern::Valued { prefix, ty } => {
                        format!("{prefix}<{}>", allowlist.type_of(*ty).name)
                    }
                })
                .collect();
            format!(
                "mount_options: comma list of 1 to {} of {{{}}}, no empty items, no repeated option; {} always added",
                spec.max_items,
                allow.join(", "),
                spec.forced.join(",")
            )
        }
    }
}

/// Generated examples of a rule's language.
pub struct Examples {
    pub accepted: Vec<Vec<String>>,
    /// Each rejected argv with the matcher's reason.
    pub rejected: Vec<(Vec<String>, String)>,
}

/// Accepted argvs built from each type's samples, and rejected ones made by swapping one value
/// for a counter-sample, each with the matcher's reason.
pub fn examples(allowlist: &Allowlist, rule: &Rule) -> Examples {
    let binary = allowlist.binary_of(rule);
    let build = |variant: usize, with_flags: bool, swap: Option<(usize, &str)>| -> Vec<String> {
        let mut argv = vec![if variant.is_multiple_of(2) {
            binary.name.clone()
        } else {
            binary.path.clone()
        }];
        for (item_idx, item) in rule.template.iter().enumerate() {
            match item {
                Item::Literal(literal) => argv.push(literal.clone()),
                Item::Implied(implied) if variant % 2 == 1 => argv.push(implied.clone()),
                Item::EndOfOptions if variant % 2 == 1 => argv.push("--".into()),
                Item::Implied(_) | Item::EndOfOptions => {}
                Item::Flags => {
                    let n_flags = if with_flags {
                        rule.flags.len()
                    } else {
                        rule.min_flags.min(rule.flags.len())
                    };
                    for flag in rule
                        .flags
                        .iter()
                        .skip(variant % rule.flags.len().max(1))
                        .chain(&rule.flags)
                        .take(n_flags)
                    {
                        let sample = |ty: TypeId| pick(allowlist, ty, variant);
                        match flag.value {
                            FlagValue::None => argv.push(flag.token.clone()),
                            FlagValue::Joined(ty) => {
                                argv.push(format!("{}{}", flag.token, sample(ty)))
                            }
                            FlagValue::Separate(ty) => {
                                argv.extend([flag.token.clone(), sample(ty)])
                            }
                        }
                    }
                }
                Item::Param(param_idx) => {
                    let param = &rule.params[*param_idx];
                    let count = match param.arity {
                        Arity::One => 1,
                        Arity::Many { min, max, .. } => (min.max(1) + variant).min(max),
                    };
                    let values = samples(&allowlist.types, allowlist.type_of(param.ty));
                    for value_idx in 0..count {
                        let value = values
                            .get((variant + value_idx + *param_idx) % values.len().max(1))
                            .cloned()
                            .unwrap_or_default();
                        match swap {
                            Some((swap_idx, token)) if swap_idx == item_idx && value_idx == 0 => {
                                argv.push(token.to_owned())
                            }
                            _ => argv.push(value),
                        }
                    }
                }
            }
        }
        argv
    };
    let allowed_here = |argv: &Vec<String>| matches!(allowlist.check(argv), Verdict::Allowed(ref matched) if matched.rule_id() == rule.id);
    let mut accepted: Vec<Vec<String>> = Vec::new();
    for variant in 0..MAX_EXAMPLES * 2 {
        for with_flags in [false, true] {
            let argv = build(variant, with_flags, None);
            if accepted.len() < 3 && allowed_here(&argv) && !accepted.contains(&argv) {
                accepted.push(argv);
            }
        }
    }
    let rule_idx = allowlist
        .rules()
        .iter()
        .position(|candidate| candidate.id == rule.id)
        .unwrap_or_default();
    let check_here = |argv: &[String]| super::matcher::check_one(allowlist, rule_idx, argv);
    let mut rejected = Vec::new();
    for (item_idx, item) in rule.template.iter().enumerate() {
        if let Item::Param(param_idx) = item {
            for counter in counter_samples(allowlist.type_of(rule.params[*param_idx].ty))
                .iter()
                .take(2)
            {
                let argv = build(0, false, Some((item_idx, counter)));
                if let Verdict::Rejected(rejection) = check_here(&argv) {
                    rejected.push((argv, rejection.to_string()));
                }
            }
        }
    }
    let mut extra = build(0, false, None);
    extra.push("extra".to_owned());
    if let Verdict::Rejected(rejection) = check_here(&extra) {
        rejected.push((extra, rejection.to_string()));
    }
    rejected.truncate(MAX_EXAMPLES);
    Examples { accepted, rejected }
}

fn pick(allowlist: &Allowlist, ty: TypeId, variant: usize) -> String {
    let values = samples(&allowlist.types, allowlist.type_of(ty));
    values
        .get(variant % values.len().max(1))
        .cloned()
        .unwrap_or_default()
}

/// The text of `nosctl allowlist explain` for a `[[managed]]` rule.
pub fn explain_managed(allowlist: &Allowlist, rule: &super::ManagedRule) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "managed rule {} ({})", rule.id, rule.effect.as_str());
    if !rule.description.is_empty() {
        let _ = writeln!(out, "  {}", rule.description);
    }
    let _ = writeln!(out, "  defined at {}", rule.origin);
    let actions: Vec<&str> = rule.actions.iter().map(|action| action.as_str()).collect();
    let _ = writeln!(
        out,
        "  kind {}; actions: {}",
        rule.kind.as_str(),
        actions.join(", ")
    );
    let _ = writeln!(out, "\nfields:");
    for ((field, _), ty) in rule.kind.fields().iter().zip(&rule.field_types) {
        let type_def = allowlist.type_of(*ty);
        let _ = writeln!(
            out,
            "  {field} := {} = {}",
            type_def.name,
            describe_type(allowlist, type_def)
        );
    }
    let boot_options = allowlist.settings().forced_boot_options.join(",");
    match rule.kind {
        super::ManagedKind::FstabEntry => {
            let _ = writeln!(
                out,
                "\nboot: {boot_options} always added to the options; never {}",
                super::managed::NEVER_AT_BOOT.join(", ")
            );
        }
        super::ManagedKind::CrypttabEntry => {
            let _ = writeln!(
                out,
                "\nboot: written with the options {},{boot_options}",
                super::managed::CRYPTTAB_TYPE
            );
        }
        super::ManagedKind::MountDir | super::ManagedKind::KeyFile => {}
    }
    out
}
