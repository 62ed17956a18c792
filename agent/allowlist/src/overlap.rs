//! Load-time detection of rules whose accepted languages intersect.
//!
//! Each rule is a finite automaton over token classes (a literal, a typed value, a joined
//! flag). Two rules of the same binary overlap when the product automaton reaches both accept
//! states; the path found gives a witness argv. Flag regions are modelled as "any declared flag,
//! any number of times", a superset of what the matcher admits, so an overlap is never missed
//! (it may be reported where flag conflicts alone would separate two rules; such rules are
//! better written apart anyway). Whether two typed classes intersect is decided on
//! representative values of each type (`value::samples`), which is exact for literals, enums and
//! integer ranges and covers every kind's shape.

use std::collections::{HashMap, VecDeque};

use super::Allowlist;
use super::grammar::{Arity, FlagValue, Item, Kind, Rule, TypeId};
use super::value::{self, samples};

/// Two rules that accept a common argv.
pub struct Overlap {
    pub first: usize,
    pub second: usize,
    pub witness: Vec<String>,
}

#[derive(Clone, Debug)]
enum Class {
    Literal(String),
    Value(TypeId),
    Joined { prefix: String, ty: TypeId },
}

struct Automaton {
    n_states: usize,
    edges: Vec<(usize, Class, usize)>,
    epsilons: Vec<(usize, usize)>,
    accept: usize,
}

pub fn find_overlaps(allowlist: &Allowlist) -> Vec<Overlap> {
    let automata: Vec<Automaton> = allowlist.rules.iter().map(automaton).collect();
    let mut overlaps = Vec::new();
    for first in 0..allowlist.rules.len() {
        for second in first + 1..allowlist.rules.len() {
            if allowlist.rules[first].binary != allowlist.rules[second].binary {
                continue;
            }
            if let Some(tokens) = intersect(allowlist, &automata[first], &automata[second]) {
                let program = allowlist.binaries[allowlist.rules[first].binary.0]
                    .name
                    .clone();
                overlaps.push(Overlap {
                    first,
                    second,
                    witness: std::iter::once(program).chain(tokens).collect(),
                });
            }
        }
    }
    overlaps
}

fn automaton(rule: &Rule) -> Automaton {
    let mut automaton = Automaton {
        n_states: 1,
        edges: Vec::new(),
        epsilons: Vec::new(),
        accept: 0,
    };
    let mut state = 0;
    let fresh = |automaton: &mut Automaton| {
        automaton.n_states += 1;
        automaton.n_states - 1
    };
    for item in &rule.template {
        match item {
            Item::Literal(literal) => {
                let next = fresh(&mut automaton);
                automaton
                    .edges
                    .push((state, Class::Literal(literal.clone()), next));
                state = next;
            }
            Item::EndOfOptions | Item::Implied(_) => {
                let token = match item {
                    Item::Implied(implied) => implied.clone(),
                    _ => "--".to_owned(),
                };
                let next = fresh(&mut automaton);
                automaton.edges.push((state, Class::Literal(token), next));
                automaton.epsilons.push((state, next));
                state = next;
            }
            Item::Flags => {
                for flag in &rule.flags {
                    match flag.value {
                        FlagValue::None => {
                            automaton
                                .edges
                                .push((state, Class::Literal(flag.token.clone()), state))
                        }
                        FlagValue::Joined(ty) => automaton.edges.push((
                            state,
                            Class::Joined {
                                prefix: flag.token.clone(),
                                ty,
                            },
                            state,
                        )),
                        FlagValue::Separate(ty) => {
                            let middle = fresh(&mut automaton);
                            automaton.edges.push((
                                state,
                                Class::Literal(flag.token.clone()),
                                middle,
                            ));
                            automaton.edges.push((middle, Class::Value(ty), state));
                        }
                    }
                }
            }
            Item::Param(param_idx) => {
                let param = &rule.params[*param_idx];
                let (min, max) = match param.arity {
                    Arity::One => (1, 1),
                    Arity::Many { min, max, .. } => (min, max),
                };
                let chain: Vec<usize> = std::iter::once(state)
                    .chain((0..max).map(|_| fresh(&mut automaton)))
                    .collect();
                for pair in chain.windows(2) {
                    automaton
                        .edges
                        .push((pair[0], Class::Value(param.ty), pair[1]));
                }
                let end = chain[max];
                for &skip_from in &chain[min..max] {
                    automaton.epsilons.push((skip_from, end));
                }
                state = end;
            }
        }
    }
    automaton.accept = state;
    automaton
}

/// Breadth-first search of the product automaton; the token path to both accept states.
fn intersect(allowlist: &Allowlist, first: &Automaton, second: &Automaton) -> Option<Vec<String>> {
    type Pair = (usize, usize);
    let mut parent: HashMap<Pair, Option<(Pair, Option<String>)>> = HashMap::new();
    let mut queue = VecDeque::from([(0, 0)]);
    parent.insert((0, 0), None);
    let goal = (first.accept, second.accept);
    while let Some(pair @ (a, b)) = queue.pop_front() {
        if pair == goal {
            let mut tokens = Vec::new();
            let mut cursor = pair;
            while let Some(Some((previous, token))) = parent.get(&cursor) {
                tokens.extend(token.clone());
                cursor = *previous;
            }
            tokens.reverse();
            return Some(tokens);
        }
        let mut next: Vec<(Pair, Option<String>)> = Vec::new();
        next.extend(
            first
                .epsilons
                .iter()
                .filter(|edge| edge.0 == a)
                .map(|edge| ((edge.1, b), None)),
        );
        next.extend(
            second
                .epsilons
                .iter()
                .filter(|edge| edge.0 == b)
                .map(|edge| ((a, edge.1), None)),
        );
        for (_, class_a, to_a) in first.edges.iter().filter(|edge| edge.0 == a) {
            for (_, class_b, to_b) in second.edges.iter().filter(|edge| edge.0 == b) {
                if let Some(token) = common_token(allowlist, class_a, class_b) {
                    next.push(((*to_a, *to_b), Some(token)));
                }
            }
        }
        for (target, token) in next {
            if let std::collections::hash_map::Entry::Vacant(entry) = parent.entry(target) {
                entry.insert(Some((pair, token)));
                queue.push_back(target);
            }
        }
    }
    None
}

/// A token both classes accept, if there is one.
fn common_token(allowlist: &Allowlist, first: &Class, second: &Class) -> Option<String> {
    let accepts = |class: &Class, token: &str| match class {
        Class::Literal(literal) => literal == token,
        Class::Value(ty) => value::check(&allowlist.types, &allowlist.types[ty.0], token).is_ok(),
        Class::Joined { prefix, ty } => token.strip_prefix(prefix.as_str()).is_some_and(|rest| {
            value::check(&allowlist.types, &allowlist.types[ty.0], rest).is_ok()
        }),
    };
    candidates(allowlist, first)
        .into_iter()
        .chain(candidates(allowlist, second))
        .find(|token| accepts(first, token) && accepts(second, token))
}

fn candidates(allowlist: &Allowlist, class: &Class) -> Vec<String> {
    match class {
        Class::Literal(literal) => vec![literal.clone()],
        Class::Value(ty) => type_candidates(allowlist, *ty),
        Class::Joined { prefix, ty } => type_candidates(allowlist, *ty)
            .into_iter()
            .map(|value| format!("{prefix}{value}"))
            .collect(),
    }
}

/// Samples of a type, plus the bounds of every integer range in the allowlist that fall
/// inside this type's range: two ranges intersect exactly when one's bound is in the other.
fn type_candidates(allowlist: &Allowlist, ty: TypeId) -> Vec<String> {
    let mut tokens = samples(&allowlist.types, &allowlist.types[ty.0]);
    if matches!(
        allowlist.types[ty.0].kind,
        Kind::Int { .. } | Kind::Devid { .. } | Kind::Label(_) | Kind::MapperName(_)
    ) {
        for other in &allowlist.types {
            match other.kind {
                Kind::Int { min, max } => tokens.extend([min.to_string(), max.to_string()]),
                Kind::Devid { max } => tokens.extend(["1".to_owned(), max.to_string()]),
                _ => {}
            }
        }
    }
    tokens
}
