//! `[[type]]`: the placeholder types params and flag values refer to, and mount-option patterns.
//!
//! ```text
//! type = "name" "=" identifier "kind" "=" kind *field    ; only the fields of its kind
//! ```
//! Types are declared (every file) before they are resolved, so they may refer to each other
//! in any order.

use std::ops::Range;

use super::Source;
use super::cx::{Cx, wide};
use super::raw::RawType;
use crate::Diagnostic;
use crate::DiagnosticKind;
use crate::grammar::{
    DeviceForm, DeviceSpec, KeyFileSpec, Kind, MountOptionsSpec, MountPathSpec, NameSpec,
    OptionPattern, Settings, SubvolumeForm, SubvolumeSpec, TypeDef, TypeId,
};
use crate::value::{escape, is_component_char};

/// Largest `max_depth` a mount path type may set (the depth itself is the type's setting).
pub const MAX_MAX_DEPTH: usize = 16;
/// Mount options that contradict the forced ones; no type may allow them.
const CONTRADICTING_OPTIONS: [&str; 2] = ["suid", "dev"];

/// The names of `types`, in order: what [`Cx::resolve_type`] looks a name up in.
pub(super) fn type_names(types: &[TypeDef]) -> impl Iterator<Item = &str> {
    types.iter().map(|ty| ty.name.as_str())
}

/// The types declared so far, each with the raw definition its kind is read from.
#[derive(Default)]
pub(super) struct Declared<'src> {
    types: Vec<TypeDef>,
    raw: Vec<(&'src Source, &'src RawType)>,
}

impl<'src> Cx<'src> {
    /// Declares a type by name; its kind is read by [`Cx::resolve_types`] once all are declared.
    pub(super) fn declare_type(
        &mut self,
        source: &'src Source,
        raw_type: &'src RawType,
        declared: &mut Declared<'src>,
    ) {
        let origin = self.origin(raw_type.name.span());
        let name = raw_type.name.get_ref();
        let first = declared
            .types
            .iter()
            .find(|ty| ty.name == *name)
            .map(|ty| &ty.origin);
        if !self.check_new(raw_type.name.span(), "type", name, first) {
            return;
        }
        self.check_identifier(raw_type.name.span(), "type", name);
        declared.types.push(TypeDef {
            name: name.clone(),
            kind: Kind::Uuid,
            origin,
        });
        declared.raw.push((source, raw_type));
    }

    /// The type `name` names, by its index in `names`; a diagnostic at `span` when there is none.
    pub(super) fn resolve_type<'n>(
        &mut self,
        span: Range<usize>,
        names: impl IntoIterator<Item = &'n str>,
        name: &str,
    ) -> Option<TypeId> {
        let found = names
            .into_iter()
            .position(|known| known == name)
            .map(TypeId);
        if found.is_none() {
            self.error(
                span,
                DiagnosticKind::Unknown {
                    what: "type",
                    name: name.to_owned(),
                },
            );
        }
        found
    }

    /// Reads the kind of every declared type, then checks what needs all of them.
    pub(super) fn resolve_types(
        &mut self,
        declared: Declared<'src>,
        settings: &Settings,
    ) -> Vec<TypeDef> {
        let Declared { mut types, raw } = declared;
        let names: Vec<String> = types.iter().map(|ty| ty.name.clone()).collect();
        for (ty, (source, raw_type)) in types.iter_mut().zip(raw) {
            self.enter(source);
            if let Some(kind) = self.kind(raw_type, &names, settings) {
                ty.kind = kind;
            }
        }
        self.check_valued_option_types(&types);
        types
    }

    /// A type's kind and the fields that kind takes; `None` when any is wrong.
    ///
    /// ```text
    /// kind = "device" [ "forms" "=" forms ] [ "kernel_names" "=" prefixes ]
    ///      / "mount_path" [ "roots" "=" paths ] [ "max_depth" "=" 1..16 ]     ; roots: the settings'
    ///      / "key_file" [ "dir" "=" path ] [ "suffix" "=" word ]             ; dir: the settings'
    ///      / ( "label" / "mapper_name" ) [ "max_len" "=" 1..255 ]
    ///      / "enum" "values" "=" words                                   ; word *( "," word ) each
    ///      / "int" [ "min" "=" u64 ] [ "max" "=" u64 ]
    ///      / "devid" [ "max" "=" u64 ]
    ///      / "uuid"
    ///      / "mount_options" [ "allow" "=" patterns ] [ "max_items" "=" 1..64 ]
    ///      / "subvolume" "form" "=" ( "share" / "snapshot_dir" / "snapshot" )
    ///        [ "roots" "=" paths ] [ "max_depth" "=" 1..16 ]                  ; max_depth: of the pool
    /// ```
    /// The mount roots (default: the settings') and the depth below them (default 4) of a
    /// `mount_path` or `subvolume` type, each checked.
    fn roots_and_depth(&mut self, raw: &RawType, settings: &Settings) -> (Vec<String>, usize) {
        let span = raw.name.span();
        let roots = raw
            .roots
            .clone()
            .unwrap_or_else(|| settings.mount_roots.clone());
        for root in &roots {
            self.check_path(span.clone(), "mount root", root);
        }
        if roots.is_empty() {
            self.error(span.clone(), DiagnosticKind::Empty { field: "roots" });
        }
        let max_depth = raw.max_depth.unwrap_or(4);
        self.check_range(span, "max_depth", wide(max_depth), 1, wide(MAX_MAX_DEPTH));
        (roots, max_depth)
    }

    pub(super) fn kind(
        &mut self,
        raw: &RawType,
        names: &[String],
        settings: &Settings,
    ) -> Option<Kind> {
        let span = raw.name.span();
        let kind_name = raw.kind.get_ref().as_str();
        let fields: [(&str, bool); 13] = [
            ("forms", raw.forms.is_some()),
            ("kernel_names", raw.kernel_names.is_some()),
            ("roots", raw.roots.is_some()),
            ("max_depth", raw.max_depth.is_some()),
            ("dir", raw.dir.is_some()),
            ("suffix", raw.suffix.is_some()),
            ("max_len", raw.max_len.is_some()),
            ("values", raw.values.is_some()),
            ("min", raw.min.is_some()),
            ("max", raw.max.is_some()),
            ("allow", raw.allow.is_some()),
            ("max_items", raw.max_items.is_some()),
            ("form", raw.form.is_some()),
        ];
        let applicable: &[&str] = match kind_name {
            "device" => &["forms", "kernel_names"],
            "mount_path" => &["roots", "max_depth"],
            "subvolume" => &["roots", "max_depth", "form"],
            "key_file" => &["dir", "suffix"],
            "label" | "mapper_name" => &["max_len"],
            "enum" => &["values"],
            "int" => &["min", "max"],
            "devid" => &["max"],
            "uuid" => &[],
            "mount_options" => &["allow", "max_items"],
            _ => {
                self.error(
                    raw.kind.span(),
                    DiagnosticKind::UnknownKind(kind_name.to_owned()),
                );
                return None;
            }
        };
        let mut ok = true;
        for (field, present) in fields {
            if present && !applicable.contains(&field) {
                self.error(
                    span.clone(),
                    DiagnosticKind::FieldNotForKind {
                        field,
                        kind: kind_name.to_owned(),
                    },
                );
                ok = false;
            }
        }
        let kind = match kind_name {
            "device" => {
                let forms = match &raw.forms {
                    Some(forms) => forms
                        .iter()
                        .filter_map(|form| {
                            let found = DeviceForm::ALL
                                .into_iter()
                                .find(|known| known.as_str() == form);
                            if found.is_none() {
                                self.error(
                                    span.clone(),
                                    DiagnosticKind::Unknown {
                                        what: "device form",
                                        name: form.clone(),
                                    },
                                );
                            }
                            found
                        })
                        .collect(),
                    None => DeviceForm::ALL.to_vec(),
                };
                let kernel_names = raw.kernel_names.clone().unwrap_or_else(|| {
                    ["sd", "vd", "xvd", "hd", "nvme", "mmcblk", "loop"]
                        .map(str::to_owned)
                        .to_vec()
                });
                for prefix in &kernel_names {
                    let valid = prefix.len() <= 16
                        && prefix.starts_with(|ch: char| ch.is_ascii_lowercase())
                        && prefix
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                    if !valid {
                        self.error(
                            span.clone(),
                            DiagnosticKind::BadWord {
                                what: "kernel name prefix",
                                word: escape(prefix),
                                shape: "[a-z][a-z0-9-]*, at most 16 bytes",
                            },
                        );
                    }
                }
                if forms.is_empty()
                    || (forms.contains(&DeviceForm::Kernel) && kernel_names.is_empty())
                {
                    self.error(span.clone(), DiagnosticKind::NoDeviceForm);
                }
                Kind::Device(DeviceSpec {
                    forms,
                    kernel_names,
                })
            }
            "mount_path" => {
                let (roots, max_depth) = self.roots_and_depth(raw, settings);
                Kind::MountPath(MountPathSpec { roots, max_depth })
            }
            "subvolume" => {
                let (roots, pool_depth) = self.roots_and_depth(raw, settings);
                let form_name = raw.form.clone().unwrap_or_default();
                let Some(form) = SubvolumeForm::ALL
                    .into_iter()
                    .find(|form| form.as_str() == form_name)
                else {
                    self.error(
                        span.clone(),
                        DiagnosticKind::Unknown {
                            what: "subvolume form (share, snapshot_dir, snapshot)",
                            name: form_name,
                        },
                    );
                    return None;
                };
                Kind::Subvolume(SubvolumeSpec {
                    roots,
                    pool_depth,
                    form,
                })
            }
            "key_file" => {
                let dir = raw.dir.clone().unwrap_or_else(|| settings.key_dir.clone());
                self.check_path(span.clone(), "key directory", &dir);
                let suffix = raw.suffix.clone().unwrap_or_default();
                if !suffix.chars().all(is_component_char) {
                    self.error(
                        span.clone(),
                        DiagnosticKind::BadWord {
                            what: "suffix",
                            word: escape(&suffix),
                            shape: "made of [A-Za-z0-9._@:+-]",
                        },
                    );
                }
                Kind::KeyFile(KeyFileSpec { dir, suffix })
            }
            "label" | "mapper_name" => {
                let max_len = raw
                    .max_len
                    .unwrap_or(if kind_name == "label" { 255 } else { 127 });
                self.check_range(span.clone(), "max_len", wide(max_len), 1, 255);
                if kind_name == "label" {
                    Kind::Label(NameSpec { max_len })
                } else {
                    Kind::MapperName(NameSpec { max_len })
                }
            }
            "enum" => {
                let values = raw.values.clone().unwrap_or_default();
                if values.is_empty() {
                    self.error(span.clone(), DiagnosticKind::Empty { field: "values" });
                }
                for (value_idx, value) in values.iter().enumerate() {
                    // Words joined by commas (`raid1,soft`): a tool's own list syntax.
                    let plain = |word: &str| {
                        !word.is_empty()
                            && !word.starts_with('-')
                            && word.chars().all(is_component_char)
                    };
                    if !value.split(',').all(plain) {
                        self.error(
                            span.clone(),
                            DiagnosticKind::BadWord {
                                what: "enum value",
                                word: escape(value),
                                shape: "plain words ([A-Za-z0-9._@:+-]+, not starting with `-`) joined by single commas",
                            },
                        );
                    }
                    if values[..value_idx].contains(value) {
                        self.error(
                            span.clone(),
                            DiagnosticKind::Repeated {
                                what: "enum value",
                                name: value.clone(),
                            },
                        );
                    }
                }
                Kind::Enum(values)
            }
            "int" => {
                let (min, max) = (raw.min.unwrap_or(0), raw.max.unwrap_or(u64::from(u32::MAX)));
                if min > max {
                    self.error(span.clone(), DiagnosticKind::MinAboveMax { min, max });
                }
                Kind::Int { min, max }
            }
            "devid" => Kind::Devid {
                max: raw.max.unwrap_or(65535).max(1),
            },
            "uuid" => Kind::Uuid,
            _ => {
                let max_items = raw.max_items.unwrap_or(16);
                let mut allow: Vec<OptionPattern> = Vec::new();
                for item in raw.allow.clone().unwrap_or_default() {
                    if let Some(pattern) = self.option_pattern(span.clone(), &item, names) {
                        let repeated = allow.iter().any(|known| match (known, &pattern) {
                            (OptionPattern::Exact(a), OptionPattern::Exact(b)) => a == b,
                            (
                                OptionPattern::Valued { prefix: a, .. },
                                OptionPattern::Valued { prefix: b, .. },
                            ) => a == b,
                            _ => false,
                        });
                        if repeated {
                            self.error(
                                span.clone(),
                                DiagnosticKind::Repeated {
                                    what: "mount option",
                                    name: item.clone(),
                                },
                            );
                        }
                        allow.push(pattern);
                    }
                }
                self.check_range(span.clone(), "max_items", wide(max_items), 1, 64);
                Kind::MountOptions(MountOptionsSpec {
                    allow,
                    max_items,
                    forced: settings.forced_mount_options.clone(),
                })
            }
        };
        ok.then_some(kind)
    }

    /// ```text
    /// pattern = word / ( prefix "$" type-name )   ; word and prefix from [a-z0-9_=:.-]
    /// ```
    pub(super) fn option_pattern(
        &mut self,
        span: Range<usize>,
        item: &str,
        names: &[String],
    ) -> Option<OptionPattern> {
        let (text, ty) = match item.split_once('$') {
            Some((prefix, type_name)) => {
                let names = names.iter().map(String::as_str);
                let ty = self.resolve_type(span.clone(), names, type_name)?;
                (prefix, Some(ty))
            }
            None => (item, None),
        };
        let valid = !text.is_empty()
            && text.starts_with(|ch: char| ch.is_ascii_lowercase())
            && text.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b'_' | b'=' | b':' | b'.' | b'-')
            });
        if !valid {
            self.error(
                span,
                DiagnosticKind::BadWord {
                    what: "mount option",
                    word: escape(item),
                    shape: "a plain option word ([a-z][a-z0-9_=:.-]*, then maybe `$` and a type)",
                },
            );
            return None;
        }
        if CONTRADICTING_OPTIONS.contains(&text) {
            self.error(
                span,
                DiagnosticKind::ContradictingOption {
                    option: text.to_owned(),
                },
            );
            return None;
        }
        Some(match ty {
            Some(ty) => OptionPattern::Valued {
                prefix: text.to_owned(),
                ty,
            },
            None => OptionPattern::Exact(text.to_owned()),
        })
    }

    /// A valued mount option must take a simple value: an int, an enum, a label.
    pub(super) fn check_valued_option_types(&mut self, types: &[TypeDef]) {
        for ty in types {
            if let Kind::MountOptions(spec) = &ty.kind {
                for pattern in &spec.allow {
                    if let OptionPattern::Valued {
                        prefix,
                        ty: value_ty,
                    } = pattern
                        && !matches!(
                            types[value_ty.0].kind,
                            Kind::Int { .. } | Kind::Enum(_) | Kind::Label(_) | Kind::Uuid
                        )
                    {
                        self.diagnostics.push(Diagnostic {
                            origin: ty.origin.clone(),
                            kind: DiagnosticKind::OptionValueType {
                                option: prefix.clone(),
                                ty: types[value_ty.0].name.clone(),
                                kind: types[value_ty.0].kind.name(),
                            },
                        });
                    }
                }
            }
        }
    }
}
