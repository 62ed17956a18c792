//! `nosctl allowlist diff OLD NEW`: what privileges NEW adds or removes relative to OLD.
//!
//! Rules are compared by id; types are compared by what they accept, so a widened type shows
//! up on every rule that uses it. Anything whose effect on the language cannot be judged
//! structurally (a changed template) counts as growth, so the gate errs towards a human look.

use super::Allowlist;
use super::grammar::{Arity, FlagValue, InUsePolicy, Item, Kind, OptionPattern, Rule, TypeDef};

/// Which way one change moves privilege.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Direction {
    Grows,
    Shrinks,
    /// Neither: limits, descriptions.
    Neutral,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub direction: Direction,
    pub subject: String,
    pub message: String,
}

pub fn diff(old: &Allowlist, new: &Allowlist) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut add = |direction, subject: &str, message: String| {
        changes.push(Change {
            direction,
            subject: subject.to_owned(),
            message,
        })
    };

    let (old_settings, new_settings) = (old.settings(), new.settings());
    set_changes(
        &old_settings.mount_roots,
        &new_settings.mount_roots,
        "mount root",
        "settings",
        &mut add,
    );
    if old_settings.key_dir != new_settings.key_dir {
        add(
            Direction::Grows,
            "settings",
            format!(
                "key directory changed from {} to {}",
                old_settings.key_dir, new_settings.key_dir
            ),
        );
    }
    for forced in &old_settings.forced_mount_options {
        if !new_settings.forced_mount_options.contains(forced) {
            add(
                Direction::Grows,
                "settings",
                format!("mount option `{forced}` is no longer forced"),
            );
        }
    }
    for forced in &old_settings.forced_boot_options {
        if !new_settings.forced_boot_options.contains(forced) {
            add(
                Direction::Grows,
                "settings",
                format!("boot option `{forced}` is no longer forced"),
            );
        }
    }

    for new_binary in new.binaries() {
        let Some(old_binary) = old
            .binaries()
            .iter()
            .find(|binary| binary.name == new_binary.name)
        else {
            continue;
        };
        if old_binary.path != new_binary.path {
            add(
                Direction::Grows,
                &new_binary.name,
                format!(
                    "path changed from {} to {}",
                    old_binary.path, new_binary.path
                ),
            );
        }
        match (old_binary.sha256, new_binary.sha256) {
            (Some(_), None) => add(
                Direction::Grows,
                &new_binary.name,
                "sha256 pin removed".to_owned(),
            ),
            (Some(a), Some(b)) if a != b => add(
                Direction::Grows,
                &new_binary.name,
                format!("sha256 pin changed to {}", hex::encode(b)),
            ),
            (None, Some(_)) => add(
                Direction::Shrinks,
                &new_binary.name,
                "sha256 pin added".to_owned(),
            ),
            _ => {}
        }
    }

    for new_type in new.types() {
        if let Some(old_type) = old.types().iter().find(|ty| ty.name == new_type.name) {
            type_changes(old_type, new_type, "type", &mut add);
        }
    }
    for new_rule in new.rules() {
        let Some(old_rule) = old.rule(&new_rule.id) else {
            add(
                Direction::Grows,
                &new_rule.id,
                format!(
                    "new {} rule: {}",
                    new_rule.effect.as_str(),
                    template_text(new, new_rule)
                ),
            );
            continue;
        };
        rule_changes(old, old_rule, new, new_rule, &mut add);
    }
    for old_rule in old.rules() {
        if new.rule(&old_rule.id).is_none() {
            add(
                Direction::Shrinks,
                &old_rule.id,
                format!("rule removed: {}", template_text(old, old_rule)),
            );
        }
    }
    for new_rule in new.managed_rules() {
        let Some(old_rule) = old
            .managed_rules()
            .iter()
            .find(|rule| rule.id == new_rule.id)
        else {
            add(
                Direction::Grows,
                &new_rule.id,
                format!("new managed rule for {}", new_rule.kind.as_str()),
            );
            continue;
        };
        if old_rule.kind != new_rule.kind {
            add(
                Direction::Grows,
                &new_rule.id,
                format!(
                    "manages {} instead of {}",
                    new_rule.kind.as_str(),
                    old_rule.kind.as_str()
                ),
            );
            continue;
        }
        let actions = |rule: &super::ManagedRule| {
            rule.actions
                .iter()
                .map(|action| action.as_str().to_owned())
                .collect::<Vec<_>>()
        };
        set_changes(
            &actions(old_rule),
            &actions(new_rule),
            "action",
            &new_rule.id,
            &mut add,
        );
        for ((field, _), (old_ty, new_ty)) in new_rule
            .kind
            .fields()
            .iter()
            .zip(old_rule.field_types.iter().zip(&new_rule.field_types))
        {
            type_changes(
                old.type_of(*old_ty),
                new.type_of(*new_ty),
                &format!("{} {field}", new_rule.id),
                &mut add,
            );
        }
    }
    for old_rule in old.managed_rules() {
        if !new
            .managed_rules()
            .iter()
            .any(|rule| rule.id == old_rule.id)
        {
            add(
                Direction::Shrinks,
                &old_rule.id,
                format!("managed rule for {} removed", old_rule.kind.as_str()),
            );
        }
    }
    changes.sort_by(|a, b| {
        a.direction
            .cmp(&b.direction)
            .then_with(|| a.subject.cmp(&b.subject))
    });
    changes
}

/// True when any change grows privilege: the CI gate.
pub fn grows(changes: &[Change]) -> bool {
    changes
        .iter()
        .any(|change| change.direction == Direction::Grows)
}

fn template_text(allowlist: &Allowlist, rule: &Rule) -> String {
    let binary = allowlist.binary_of(rule);
    let tokens: Vec<String> = rule
        .template
        .iter()
        .map(|item| match item {
            Item::Literal(literal) => literal.clone(),
            Item::Implied(implied) => format!("[{implied}]"),
            Item::EndOfOptions => "--".to_owned(),
            Item::Flags => "$flags".to_owned(),
            Item::Param(idx) => {
                let param = &rule.params[*idx];
                let dots = if matches!(param.arity, Arity::Many { .. }) {
                    "..."
                } else {
                    ""
                };
                format!("${}:{}{dots}", param.name, allowlist.type_of(param.ty).name)
            }
        })
        .collect();
    format!("{} {}", binary.path, tokens.join(" "))
}

fn rule_changes(
    old: &Allowlist,
    old_rule: &Rule,
    new: &Allowlist,
    new_rule: &Rule,
    add: &mut impl FnMut(Direction, &str, String),
) {
    let id = new_rule.id.as_str();
    let (old_binary, new_binary) = (old.binary_of(old_rule), new.binary_of(new_rule));
    if old_binary.path != new_binary.path {
        add(
            Direction::Grows,
            id,
            format!("runs {} instead of {}", new_binary.path, old_binary.path),
        );
    }
    let (old_text, new_text) = (template_text(old, old_rule), template_text(new, new_rule));
    let param_names = |rule: &Rule| {
        rule.params
            .iter()
            .map(|param| param.name.clone())
            .collect::<Vec<_>>()
    };
    let same_shape = old_rule.template.len() == new_rule.template.len()
        && old_rule
            .template
            .iter()
            .zip(&new_rule.template)
            .all(|(a, b)| match (a, b) {
                (Item::Param(x), Item::Param(y)) => {
                    old_rule.params[*x].name == new_rule.params[*y].name
                }
                _ => a == b,
            })
        && param_names(old_rule) == param_names(new_rule);
    if !same_shape {
        add(
            Direction::Grows,
            id,
            format!("argv template changed from `{old_text}` to `{new_text}`"),
        );
    }
    if new_rule.effect < old_rule.effect {
        add(
            Direction::Grows,
            id,
            format!(
                "effect lowered from {} to {} (less confirmation)",
                old_rule.effect.as_str(),
                new_rule.effect.as_str()
            ),
        );
    } else if new_rule.effect > old_rule.effect {
        add(
            Direction::Shrinks,
            id,
            format!(
                "effect raised from {} to {}",
                old_rule.effect.as_str(),
                new_rule.effect.as_str()
            ),
        );
    }
    if new_rule.beside_jobs && !old_rule.beside_jobs {
        add(
            Direction::Grows,
            id,
            "may now run while a job holds its pool (beside_jobs)".into(),
        );
    }
    if new_rule.limits.timeout > old_rule.limits.timeout {
        add(
            Direction::Neutral,
            id,
            format!("timeout raised to {} s", new_rule.limits.timeout.as_secs()),
        );
    }
    if new_rule.min_flags < old_rule.min_flags {
        add(
            Direction::Grows,
            id,
            format!(
                "needs {} flag(s) instead of {}",
                new_rule.min_flags, old_rule.min_flags
            ),
        );
    }
    for old_param_idx in &old_rule.distinct {
        let name = &old_rule.params[*old_param_idx].name;
        if !new_rule
            .distinct
            .iter()
            .any(|idx| new_rule.params[*idx].name == *name)
        {
            add(
                Direction::Grows,
                id,
                format!("{name} no longer has to differ from the other distinct params"),
            );
        }
    }
    for new_param in &new_rule.params {
        let Some(old_param) = old_rule
            .params
            .iter()
            .find(|param| param.name == new_param.name)
        else {
            continue;
        };
        let subject = format!("{id} {}", new_param.name);
        match (&old_param.in_use, &new_param.in_use) {
            (InUsePolicy::Refused, InUsePolicy::Allowed { reason }) => add(
                Direction::Grows,
                &subject,
                format!("may now be in use (in_use = allowed: {reason})"),
            ),
            (InUsePolicy::Allowed { .. }, InUsePolicy::Refused) => add(
                Direction::Shrinks,
                &subject,
                "is now refused when in use".to_owned(),
            ),
            _ => {}
        }
        type_changes(
            old.type_of(old_param.ty),
            new.type_of(new_param.ty),
            &subject,
            add,
        );
        match (old_param.arity, new_param.arity) {
            (
                Arity::Many {
                    min: old_min,
                    max: old_max,
                    distinct: old_distinct,
                },
                Arity::Many { min, max, distinct },
            ) => {
                if max > old_max || min < old_min {
                    add(
                        Direction::Grows,
                        &subject,
                        format!("count widened from {old_min}..={old_max} to {min}..={max}"),
                    );
                } else if max < old_max || min > old_min {
                    add(
                        Direction::Shrinks,
                        &subject,
                        format!("count narrowed from {old_min}..={old_max} to {min}..={max}"),
                    );
                }
                if old_distinct && !distinct {
                    add(
                        Direction::Grows,
                        &subject,
                        "values no longer have to be distinct".to_owned(),
                    );
                }
            }
            (old_arity, arity) if old_arity != arity => {
                add(Direction::Grows, &subject, "arity changed".to_owned())
            }
            _ => {}
        }
    }
    for new_flag in &new_rule.flags {
        let subject = format!("{id} {}", new_flag.token);
        let Some(old_flag) = old_rule
            .flags
            .iter()
            .find(|flag| flag.token == new_flag.token)
        else {
            add(
                Direction::Grows,
                id,
                format!("new flag `{}`", new_flag.token),
            );
            continue;
        };
        if new_flag.max > old_flag.max {
            add(
                Direction::Grows,
                &subject,
                format!(
                    "may repeat {} times instead of {}",
                    new_flag.max, old_flag.max
                ),
            );
        }
        let names = |rule: &Rule, idxs: &[usize]| {
            idxs.iter()
                .map(|&idx| rule.flags[idx].token.clone())
                .collect::<Vec<_>>()
        };
        let (old_conflicts, new_conflicts) = (
            names(old_rule, &old_flag.conflicts),
            names(new_rule, &new_flag.conflicts),
        );
        let (old_requires, new_requires) = (
            names(old_rule, &old_flag.requires),
            names(new_rule, &new_flag.requires),
        );
        for lost in old_conflicts
            .iter()
            .filter(|token| !new_conflicts.contains(token))
        {
            add(
                Direction::Grows,
                &subject,
                format!("may now be combined with `{lost}`"),
            );
        }
        for lost in old_requires
            .iter()
            .filter(|token| !new_requires.contains(token))
        {
            add(
                Direction::Grows,
                &subject,
                format!("no longer requires `{lost}`"),
            );
        }
        match (old_flag.value, new_flag.value) {
            (FlagValue::None, FlagValue::None) => {}
            (FlagValue::Separate(a), FlagValue::Separate(b))
            | (FlagValue::Joined(a), FlagValue::Joined(b)) => {
                type_changes(old.type_of(a), new.type_of(b), &subject, add);
            }
            _ => add(Direction::Grows, &subject, "value form changed".to_owned()),
        }
    }
    for old_flag in &old_rule.flags {
        if !new_rule
            .flags
            .iter()
            .any(|flag| flag.token == old_flag.token)
        {
            add(
                Direction::Shrinks,
                id,
                format!("flag `{}` removed", old_flag.token),
            );
        }
    }
}

fn set_changes(
    old: &[String],
    new: &[String],
    what: &str,
    subject: &str,
    add: &mut impl FnMut(Direction, &str, String),
) {
    for item in new.iter().filter(|item| !old.contains(item)) {
        add(Direction::Grows, subject, format!("{what} `{item}` added"));
    }
    for item in old.iter().filter(|item| !new.contains(item)) {
        add(
            Direction::Shrinks,
            subject,
            format!("{what} `{item}` removed"),
        );
    }
}

fn range_change(
    what: &str,
    (old_min, old_max): (u64, u64),
    (min, max): (u64, u64),
    subject: &str,
    add: &mut impl FnMut(Direction, &str, String),
) {
    if min < old_min || max > old_max {
        add(
            Direction::Grows,
            subject,
            format!("{what} widened from {old_min}..={old_max} to {min}..={max}"),
        );
    } else if min > old_min || max < old_max {
        add(
            Direction::Shrinks,
            subject,
            format!("{what} narrowed from {old_min}..={old_max} to {min}..={max}"),
        );
    }
}

/// How the language of a type changed, judged kind by kind.
fn type_changes(
    old: &TypeDef,
    new: &TypeDef,
    subject: &str,
    add: &mut impl FnMut(Direction, &str, String),
) {
    let subject = format!("{subject} ({})", new.name);
    let subject = subject.as_str();
    match (&old.kind, &new.kind) {
        (Kind::Device(a), Kind::Device(b)) => {
            let forms = |spec: &super::grammar::DeviceSpec| {
                spec.forms
                    .iter()
                    .map(|form| form.as_str().to_owned())
                    .collect::<Vec<_>>()
            };
            set_changes(&forms(a), &forms(b), "device form", subject, add);
            set_changes(
                &a.kernel_names,
                &b.kernel_names,
                "kernel name prefix",
                subject,
                add,
            );
        }
        (Kind::MountPath(a), Kind::MountPath(b)) => {
            set_changes(&a.roots, &b.roots, "mount root", subject, add);
            range_change(
                "depth",
                (1, a.max_depth as u64),
                (1, b.max_depth as u64),
                subject,
                add,
            );
        }
        (Kind::Subvolume(a), Kind::Subvolume(b)) => {
            set_changes(&a.roots, &b.roots, "mount root", subject, add);
            range_change(
                "pool depth",
                (1, a.pool_depth as u64),
                (1, b.pool_depth as u64),
                subject,
                add,
            );
            if a.form != b.form {
                add(
                    Direction::Grows,
                    subject,
                    format!(
                        "subvolume form now {} instead of {}",
                        b.form.as_str(),
                        a.form.as_str()
                    ),
                );
            }
        }
        (Kind::KeyFile(a), Kind::KeyFile(b)) => {
            if a != b {
                add(
                    Direction::Grows,
                    subject,
                    format!(
                        "key files now {}/*{} instead of {}/*{}",
                        b.dir, b.suffix, a.dir, a.suffix
                    ),
                );
            }
        }
        (Kind::Label(a), Kind::Label(b)) | (Kind::MapperName(a), Kind::MapperName(b)) => {
            range_change(
                "length",
                (1, a.max_len as u64),
                (1, b.max_len as u64),
                subject,
                add,
            );
        }
        (Kind::Enum(a), Kind::Enum(b)) => set_changes(a, b, "value", subject, add),
        (
            Kind::Int {
                min: a_min,
                max: a_max,
            },
            Kind::Int { min, max },
        ) => range_change("range", (*a_min, *a_max), (*min, *max), subject, add),
        (Kind::Devid { max: a_max }, Kind::Devid { max }) => {
            range_change("range", (1, *a_max), (1, *max), subject, add)
        }
        (Kind::Uuid, Kind::Uuid) => {}
        (Kind::MountOptions(a), Kind::MountOptions(b)) => {
            let words = |spec: &super::grammar::MountOptionsSpec| {
                spec.allow
                    .iter()
                    .map(|pattern| match pattern {
                        OptionPattern::Exact(word) => word.clone(),
                        OptionPattern::Valued { prefix, .. } => format!("{prefix}<value>"),
                    })
                    .collect::<Vec<_>>()
            };
            set_changes(&words(a), &words(b), "mount option", subject, add);
            range_change(
                "item count",
                (1, a.max_items as u64),
                (1, b.max_items as u64),
                subject,
                add,
            );
        }
        _ => add(
            Direction::Grows,
            subject,
            format!(
                "type changed from a {} to a {}",
                old.kind.name(),
                new.kind.name()
            ),
        ),
    }
}
